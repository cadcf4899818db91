"""Errors of the calibration package.

Every error carries a one-line message meant for a person: the CLI prints it as is (one line,
exit code 2). The subclasses let callers and tests tell the causes apart.
"""

from __future__ import annotations


class CalibrationError(ValueError):
    """A camera cannot be calibrated from its inputs, or the result fails a sanity check."""


class CvatError(CalibrationError):
    """A CVAT annotation file is malformed or holds no usable point annotation."""


class TooFewPointsError(CalibrationError):
    """Too few points, images or matches to fit the model at all."""


class DegenerateGeometryError(CalibrationError):
    """The points do not constrain the model: all on one line, coincident, or nearly so."""


class BoardNotFoundError(CalibrationError):
    """No checkerboard (of the given or of any common size) was found in the images."""
