"""The consumer remembers which buckets it noted, per channel, without growing at a boundary."""

from __future__ import annotations

import tracemalloc

from consumers.writer import BucketNotes

CHANNELS = [-1_003_000_000_000 - i for i in range(3_000)]


def _all_move_to(notes: BucketNotes, bucket: int) -> int:
    """Every channel notes ``bucket``; returns the bytes this left allocated."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for c in CHANNELS:
            notes.add(c, bucket)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_bucket_boundary_crossed_by_every_chat_at_once_adds_no_memory() -> None:
    notes = BucketNotes(50_000)
    for bucket in (98, 99, 100):
        _all_move_to(notes, bucket)
    # Keyed by (channel, bucket), 3,000 channels moving to a new bucket left about 780 KiB.
    grown = _all_move_to(notes, 101)
    assert grown < 64 * 1024, f"{grown / 1024:.0f} KiB left behind by one boundary"
    assert len(notes) == len(CHANNELS)


def test_a_channel_keeps_its_last_buckets_and_an_older_one_is_noted_again() -> None:
    notes = BucketNotes(50_000)
    for bucket in (100, 101, 102):
        notes.add(7, bucket)
    assert all((7, b) in notes for b in (100, 101, 102))
    notes.add(7, 103)
    assert (7, 103) in notes and (7, 102) in notes
    assert (7, 100) not in notes  # a message for it writes the note again (idempotent)
    notes.add(7, 100)  # a lagging backlog's bucket is kept while it is in use
    assert (7, 100) in notes and (7, 103) in notes
    assert (8, 103) not in notes


def test_the_channels_remembered_are_bounded() -> None:
    notes = BucketNotes(100)
    for c in CHANNELS:
        notes.add(c, 5)
    assert len(notes) == 100
    assert (CHANNELS[-1], 5) in notes and (CHANNELS[0], 5) not in notes
