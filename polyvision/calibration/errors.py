"""Errors of the calibration package."""

from __future__ import annotations


class CalibrationError(ValueError):
    """A camera cannot be calibrated from its inputs, or the result fails a sanity check."""


class CvatError(CalibrationError):
    """A CVAT annotation file is malformed or holds no usable point annotation."""
