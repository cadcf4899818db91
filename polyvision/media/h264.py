"""H.264 facts the packagers and encoders share."""

from __future__ import annotations

import re


def avc1_codecs(extradata: bytes) -> str:
    """The RFC 6381 ``CODECS`` value of an H.264 stream: ``avc1.PPCCLL``.

    Profile, constraint flags and level come from the stream's SPS: the avcC header of MP4
    extradata, or the SPS NAL unit of Annex B extradata.

    Args:
        extradata: The stream's codec extradata.

    Returns:
        For example ``avc1.64001f`` (High profile, level 3.1).

    Raises:
        ValueError: The extradata holds no SPS.
    """
    # avcC starts with configurationVersion 1, then profile, compatibility flags and level;
    # Annex B starts with a start code (0x00).
    is_avcc = len(extradata) >= 4 and extradata[0] == 1
    sps_head = extradata[1:4] if is_avcc else _annexb_sps_head(extradata)
    return "avc1." + sps_head.hex()


def _annexb_sps_head(data: bytes) -> bytes:
    """profile_idc, constraint flags and level_idc of the first SPS in Annex B data."""
    for part in re.split(b"\x00\x00\x01", data):
        nal = part.rstrip(b"\x00")
        if len(nal) >= 4 and nal[0] & 0x1F == 7:
            return nal[1:4]
    raise ValueError("no SPS in the stream's extradata")
