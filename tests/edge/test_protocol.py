"""Part arithmetic of the upload protocol."""

from __future__ import annotations

import pytest

from edge.protocol import batches, missing_parts, part_range, parts_total

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("size", "part_size", "expected"),
    [(1, 5 * MIB, 1), (5 * MIB, 5 * MIB, 1), (5 * MIB + 1, 5 * MIB, 2), (16 * MIB, 5 * MIB, 4)],
)
def test_parts_total(size: int, part_size: int, expected: int) -> None:
    assert parts_total(size, part_size) == expected


def test_part_ranges_tile_the_file_exactly() -> None:
    size, part_size = 16 * MIB + 123, 5 * MIB
    ranges = [part_range(n, part_size, size) for n in range(1, parts_total(size, part_size) + 1)]
    assert ranges[0] == (0, part_size)
    assert ranges[-1] == (15 * MIB, MIB + 123)
    # Contiguous, no overlap, nothing left over.
    position = 0
    for offset, length in ranges:
        assert offset == position and 0 < length <= part_size
        position += length
    assert position == size


@pytest.mark.parametrize("number", [0, 5, -1])
def test_part_outside_the_file(number: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        part_range(number, 5 * MIB, 16 * MIB)


def test_invalid_sizes() -> None:
    with pytest.raises(ValueError):
        parts_total(0, 5)
    with pytest.raises(ValueError):
        parts_total(5, 0)


def test_missing_parts_and_batches() -> None:
    assert missing_parts(6, [2, 5, 5]) == [1, 3, 4, 6]
    assert missing_parts(3, {1, 2, 3}) == []
    numbers = list(range(1, 251))
    cut = batches(numbers)
    assert [len(batch) for batch in cut] == [100, 100, 50]
    assert [n for batch in cut for n in batch] == numbers
    assert batches([1, 2, 3], 2) == [[1, 2], [3]]
    assert batches([], 2) == []
