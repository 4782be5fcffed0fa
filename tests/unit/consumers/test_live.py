"""Which records may skip their dedupe read (``TGBRIDGE_WORKER__LIVE_WINDOW_S``)."""

from __future__ import annotations

from consumers.loop import is_live

NOW_MS = 1_790_000_000_000.0


def test_a_record_younger_than_the_window_is_live() -> None:
    assert is_live(NOW_MS - 299_000, NOW_MS, 300.0)


def test_a_record_older_than_the_window_is_read_first() -> None:
    assert not is_live(NOW_MS - 301_000, NOW_MS, 300.0)


def test_a_window_of_zero_reads_first_even_a_record_from_the_future() -> None:
    # A producer whose clock runs ahead stamps records in the future: their age is negative.
    # A replay (which forces a window of 0) must still read every mapping first.
    assert not is_live(NOW_MS, NOW_MS, 0.0)
    assert not is_live(NOW_MS + 5_000, NOW_MS, 0.0)
