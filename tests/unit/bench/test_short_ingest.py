"""The runner's note when the ingest it counts ran under the issue's 30 seconds."""

from bench.run import short_ingest


def test_an_ingest_of_30_s_or_more_gets_no_note() -> None:
    assert short_ingest(30.0, 6_000.0) is None
    assert short_ingest(41.2, 4_368.0) is None


def test_a_short_ingest_names_its_length_and_the_messages_that_would_do() -> None:
    # Round 24's run BH: 180,000 updates at 6,077 msg/s lasted 29.6 s.
    note = short_ingest(29.6, 6_077.0)
    assert note is not None
    assert "29.6 s, under 30 s" in note
    # 6,077 msg/s for 36 s is 218,772 updates, rounded up to ten thousand.
    assert "--messages 220000" in note
