"""Reading the boxes of CMAF (fragmented MP4) files: what the manifests need to know.

The HLS muxer writes the segments; the DASH MPD and the I-frame playlists describe the very
same files, so their timing and byte ranges are read back from the files themselves rather
than predicted: the initialisation segment's media timescale (``mdhd``), and per media segment
its movie fragments' decode time (``tfdt``), samples (``trun`` with the ``tfhd`` defaults) and
where the first sample's bytes lie.

Only what ISO/IEC 14496-12 defines for these boxes is read; nothing here decodes video.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

# tfhd flags
_BASE_DATA_OFFSET = 0x000001
_SAMPLE_DESCRIPTION_INDEX = 0x000002
_DEFAULT_SAMPLE_DURATION = 0x000008
_DEFAULT_SAMPLE_SIZE = 0x000010
_DEFAULT_SAMPLE_FLAGS = 0x000020
# trun flags
_DATA_OFFSET = 0x000001
_FIRST_SAMPLE_FLAGS = 0x000004
_SAMPLE_DURATION = 0x000100
_SAMPLE_SIZE = 0x000200
_SAMPLE_FLAGS = 0x000400
_SAMPLE_CTO = 0x000800
# sample flags: sample_is_non_sync_sample
_NON_SYNC = 0x00010000


class CmafError(ValueError):
    """A file is not the fragmented MP4 the packager writes."""


@dataclass(frozen=True)
class Box:
    """One box: its type, where it starts in the file, its size and its payload's start."""

    type: bytes
    offset: int
    size: int
    body: int  # offset of the payload (after the header)

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class Sample:
    """One sample of a fragment.

    Attributes:
        decode_time: Decode time in the track's timescale.
        duration: Duration in the timescale.
        composition_offset: Presentation time minus decode time.
        offset: Byte offset of its data in the file.
        size: Bytes of data.
        is_sync: Whether it is a sync sample (a keyframe).
    """

    decode_time: int
    duration: int
    composition_offset: int
    offset: int
    size: int
    is_sync: bool

    @property
    def presentation_time(self) -> int:
        return self.decode_time + self.composition_offset


@dataclass(frozen=True)
class Fragment:
    """One movie fragment (``moof`` and its samples)."""

    moof_offset: int
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class Segment:
    """A media segment's fragments, and the figures the manifests use.

    Attributes:
        size: The file's size in bytes.
        fragments: Its movie fragments in file order.
    """

    size: int
    fragments: tuple[Fragment, ...]

    @property
    def samples(self) -> list[Sample]:
        return [sample for fragment in self.fragments for sample in fragment.samples]

    @property
    def earliest_presentation_time(self) -> int:
        return min(sample.presentation_time for sample in self.samples)

    @property
    def duration(self) -> int:
        """Sum of the sample durations, in the timescale."""
        return sum(sample.duration for sample in self.samples)

    @property
    def starts_with_sync_sample(self) -> bool:
        return self.samples[0].is_sync

    def first_sample_range(self) -> tuple[int, int]:
        """``(offset, length)`` from the first ``moof`` to the end of the first sample's data:
        what an I-frame playlist's ``EXT-X-BYTERANGE`` names (the fragment header and the
        keyframe, enough to decode it after the initialisation segment)."""
        first = self.fragments[0]
        sample = first.samples[0]
        return first.moof_offset, sample.offset + sample.size - first.moof_offset


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes laid one after another in ``data[start:end]``.

    Raises:
        CmafError: A box header is truncated or a size runs past ``end``.
    """
    end = len(data) if end is None else end
    offset = start
    while offset < end:
        if end - offset < 8:
            raise CmafError(f"truncated box header at {offset}")
        size, box_type = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if end - offset < 16:
                raise CmafError(f"truncated large box header at {offset}")
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:  # to the end of the file
            size = end - offset
        if size < header or offset + size > end:
            raise CmafError(f"box {box_type!r} at {offset} has a bad size {size}")
        yield Box(box_type, offset, size, offset + header)
        offset += size


def find_box(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> Box:
    """The first box at ``path`` (types from the outermost), looking inside containers.

    Raises:
        CmafError: No such box.
    """
    for box in iter_boxes(data, start, end):
        if box.type == path[0]:
            if len(path) == 1:
                return box
            return find_box(data, path[1:], box.body, box.end)
    raise CmafError(f"no {b'/'.join(path).decode()} box")


def init_timescale(data: bytes) -> int:
    """The media timescale (ticks per second) of an initialisation segment's first track.

    Raises:
        CmafError: It has no ``moov/trak/mdia/mdhd``.
    """
    mdhd = find_box(data, [b"moov", b"trak", b"mdia", b"mdhd"])
    version = data[mdhd.body]
    # version 1: 64-bit creation and modification times before the timescale.
    (timescale,) = struct.unpack_from(">I", data, mdhd.body + (20 if version == 1 else 12))
    if timescale <= 0:
        raise CmafError("mdhd timescale is zero")
    return int(timescale)


def read_segment(data: bytes) -> Segment:
    """A media segment's fragments and samples (one track, as the packager writes).

    Raises:
        CmafError: No ``moof``, a fragment without ``tfhd``/``tfdt``/``trun``, or samples
            whose data lies outside the file.
    """
    fragments = []
    for box in iter_boxes(data):
        if box.type == b"moof":
            fragments.append(_read_fragment(data, box))
    if not fragments or not fragments[0].samples:
        raise CmafError("no movie fragment with samples")
    return Segment(size=len(data), fragments=tuple(fragments))


def _read_fragment(data: bytes, moof: Box) -> Fragment:
    traf = find_box(data, [b"traf"], moof.body, moof.end)
    tfhd = find_box(data, [b"tfhd"], traf.body, traf.end)
    flags = int.from_bytes(data[tfhd.body + 1 : tfhd.body + 4], "big")
    position = tfhd.body + 8  # version/flags, track_ID
    base = moof.offset  # default-base-is-moof, and the default for the first traf anyway
    if flags & _BASE_DATA_OFFSET:
        (base,) = struct.unpack_from(">Q", data, position)
        position += 8
    if flags & _SAMPLE_DESCRIPTION_INDEX:
        position += 4
    default_duration = default_size = default_flags = 0
    if flags & _DEFAULT_SAMPLE_DURATION:
        (default_duration,) = struct.unpack_from(">I", data, position)
        position += 4
    if flags & _DEFAULT_SAMPLE_SIZE:
        (default_size,) = struct.unpack_from(">I", data, position)
        position += 4
    if flags & _DEFAULT_SAMPLE_FLAGS:
        (default_flags,) = struct.unpack_from(">I", data, position)

    tfdt = find_box(data, [b"tfdt"], traf.body, traf.end)
    if data[tfdt.body] == 1:
        (decode_time,) = struct.unpack_from(">Q", data, tfdt.body + 4)
    else:
        (decode_time,) = struct.unpack_from(">I", data, tfdt.body + 4)

    samples: list[Sample] = []
    data_end = base  # where the previous run's data ended
    for trun in iter_boxes(data, traf.body, traf.end):
        if trun.type != b"trun":
            continue
        version = data[trun.body]
        run_flags = int.from_bytes(data[trun.body + 1 : trun.body + 4], "big")
        (count,) = struct.unpack_from(">I", data, trun.body + 4)
        position = trun.body + 8
        offset = data_end
        if run_flags & _DATA_OFFSET:
            (data_offset,) = struct.unpack_from(">i", data, position)
            offset = base + data_offset
            position += 4
        first_flags = None
        if run_flags & _FIRST_SAMPLE_FLAGS:
            (first_flags,) = struct.unpack_from(">I", data, position)
            position += 4
        for index in range(count):
            duration, size, sample_flags, cto = default_duration, default_size, default_flags, 0
            if run_flags & _SAMPLE_DURATION:
                (duration,) = struct.unpack_from(">I", data, position)
                position += 4
            if run_flags & _SAMPLE_SIZE:
                (size,) = struct.unpack_from(">I", data, position)
                position += 4
            if run_flags & _SAMPLE_FLAGS:
                (sample_flags,) = struct.unpack_from(">I", data, position)
                position += 4
            if run_flags & _SAMPLE_CTO:
                (cto,) = struct.unpack_from(">i" if version else ">I", data, position)
                position += 4
            if index == 0 and first_flags is not None:
                sample_flags = first_flags
            if offset + size > len(data):
                raise CmafError(f"sample data at {offset}+{size} runs past the file")
            samples.append(
                Sample(
                    decode_time=decode_time,
                    duration=duration,
                    composition_offset=cto,
                    offset=offset,
                    size=size,
                    is_sync=not sample_flags & _NON_SYNC,
                )
            )
            decode_time += duration
            offset += size
        data_end = offset
    return Fragment(moof_offset=moof.offset, samples=tuple(samples))
