"""Part arithmetic of a multipart upload: sizes, counts and what is missing. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from polyvision.storage.objects import (
    DEFAULT_PART_SIZE,
    MAX_PART_NUMBER,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    PartInfo,
)

MiB = 1024 * 1024


class PartSizeError(ValueError):
    """The requested part size cannot upload these files."""


def parts_total(size: int, part_size: int) -> int:
    """How many parts a file of `size` bytes has (at least one)."""
    return max(1, -(-size // part_size))


def part_length(number: int, size: int, part_size: int) -> int:
    """The length of part `number` (1-based): `part_size`, the last one shorter."""
    return min(part_size, size - (number - 1) * part_size)


def choose_part_size(
    sizes: Sequence[int], requested: int | None, *, limit: int | None = None
) -> int:
    """The part size of a session uploading files of `sizes` bytes.

    Without a request: 8 MiB (or `limit` when smaller), grown in whole MiB when a file would
    need more than 10,000 parts. A requested size must obey S3's rules: at most 5 GiB, at least
    5 MiB unless every file fits in one part (the last part may be short), and at most 10,000
    parts per file; and it must not exceed `limit`, the largest part the deployment can
    receive (the API's body limit when parts go through it).

    Raises:
        PartSizeError: the requested size breaks one of those rules, or no size fits.
    """
    largest = max(sizes)
    ceiling = MAX_PART_SIZE if limit is None else min(limit, MAX_PART_SIZE)
    if requested is None:
        needed = -(-largest // MAX_PART_NUMBER)
        chosen = max(min(DEFAULT_PART_SIZE, ceiling), -(-needed // MiB) * MiB)
        if chosen > ceiling:
            raise PartSizeError(f"a file of {largest} bytes is too large to upload")
        if chosen < MIN_PART_SIZE and parts_total(largest, chosen) > 1:
            raise PartSizeError(
                f"parts of at most {ceiling} bytes are smaller than the {MIN_PART_SIZE} bytes "
                "a multipart upload needs"
            )
        return chosen
    if requested > ceiling:
        raise PartSizeError(f"part_size must be at most {ceiling} bytes")
    if requested < MIN_PART_SIZE and parts_total(largest, requested) > 1:
        raise PartSizeError(
            f"part_size must be at least {MIN_PART_SIZE} bytes unless each file fits in one part"
        )
    if parts_total(largest, requested) > MAX_PART_NUMBER:
        raise PartSizeError(
            f"part_size {requested} needs more than {MAX_PART_NUMBER} parts for a file of "
            f"{largest} bytes"
        )
    return requested


def missing_parts(uploaded: Iterable[PartInfo], size: int, part_size: int) -> list[int]:
    """The part numbers of the file not uploaded yet, ascending."""
    present = {part.number for part in uploaded}
    return [n for n in range(1, parts_total(size, part_size) + 1) if n not in present]


def part_size_problems(uploaded: Iterable[PartInfo], size: int, part_size: int) -> list[str]:
    """Uploaded parts whose size is not the one the declared file size implies, or that lie
    beyond the file's last part; one sentence each."""
    total = parts_total(size, part_size)
    problems: list[str] = []
    for part in uploaded:
        if part.number > total:
            problems.append(f"part {part.number} is beyond the last part ({total})")
        elif part.size != (expected := part_length(part.number, size, part_size)):
            problems.append(f"part {part.number} has {part.size} bytes, expected {expected}")
    return problems
