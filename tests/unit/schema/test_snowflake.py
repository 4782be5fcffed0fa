from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schema.snowflake import (
    EPOCH_MS,
    MAX_ID,
    MAX_SEQUENCE,
    MAX_TIMESTAMP,
    MAX_WORKER,
    SEQUENCE_BITS,
    TIMESTAMP_BITS,
    WORKER_BITS,
    Snowflake,
    SnowflakeGenerator,
    compose,
    decode,
    from_unix_ms,
)

ms_parts = st.integers(min_value=0, max_value=MAX_TIMESTAMP)
worker_parts = st.integers(min_value=0, max_value=MAX_WORKER)
sequence_parts = st.integers(min_value=0, max_value=MAX_SEQUENCE)
parts = st.tuples(ms_parts, worker_parts, sequence_parts)


def test_layout_constants():
    assert TIMESTAMP_BITS + WORKER_BITS + SEQUENCE_BITS == 64
    assert MAX_WORKER == 1023
    assert MAX_SEQUENCE == 4095
    assert EPOCH_MS == int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


def test_known_vectors():
    assert compose(0, 0, 0) == 0
    assert from_unix_ms(1704067200000 + 1, 1, 1) == (1 << 22) | (1 << 12) | 1
    assert compose(MAX_TIMESTAMP, MAX_WORKER, MAX_SEQUENCE) == MAX_ID == 2**64 - 1


@given(parts)
def test_compose_decode_round_trip(p):
    ms, worker, sequence = p
    snowflake_id = compose(ms, worker, sequence)
    assert 0 <= snowflake_id <= MAX_ID
    decoded = decode(snowflake_id)
    assert decoded == Snowflake(ms, worker, sequence)
    assert decoded.id == snowflake_id
    assert decoded.unix_ms == EPOCH_MS + ms
    assert from_unix_ms(decoded.unix_ms, worker, sequence) == snowflake_id


@given(st.integers(min_value=0, max_value=MAX_ID))
def test_decode_compose_round_trip(snowflake_id):
    d = decode(snowflake_id)
    assert compose(d.ms_since_epoch, d.worker, d.sequence) == snowflake_id


@given(ms_parts)
def test_datetime_is_utc_and_exact_to_the_millisecond(ms):
    when = decode(compose(ms, 0, 0)).datetime
    assert when.tzinfo is not None
    assert when.utcoffset().total_seconds() == 0
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    assert delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000 == (
        EPOCH_MS + ms
    )
    assert delta.microseconds % 1000 == 0


def test_datetime_of_epoch():
    assert decode(0).datetime == datetime(2024, 1, 1, tzinfo=UTC)


@given(parts, parts)
def test_ids_order_like_part_tuples(a, b):
    id_a, id_b = compose(*a), compose(*b)
    assert (id_a < id_b) == (a < b)
    assert (id_a == id_b) == (a == b)
    assert (decode(id_a) < decode(id_b)) == (a < b)


@pytest.mark.parametrize(
    ("ms", "worker", "sequence", "part"),
    [
        (-1, 0, 0, "ms_since_epoch"),
        (MAX_TIMESTAMP + 1, 0, 0, "ms_since_epoch"),
        (0, -1, 0, "worker"),
        (0, MAX_WORKER + 1, 0, "worker"),
        (0, 0, -1, "sequence"),
        (0, 0, MAX_SEQUENCE + 1, "sequence"),
    ],
)
def test_compose_rejects_out_of_range_parts(ms, worker, sequence, part):
    with pytest.raises(ValueError, match=part):
        compose(ms, worker, sequence)


def test_before_epoch_message():
    with pytest.raises(ValueError, match="before the Snowflake epoch 2024-01-01"):
        compose(-1, 0, 0)
    with pytest.raises(ValueError, match=r"unix_ms .*before the Snowflake epoch 2024-01-01"):
        from_unix_ms(EPOCH_MS - 1, 0, 0)


@pytest.mark.parametrize("snowflake_id", [-1, MAX_ID + 1])
def test_decode_rejects_out_of_range(snowflake_id):
    with pytest.raises(ValueError, match="snowflake_id"):
        decode(snowflake_id)


@pytest.mark.parametrize("worker", [-1, MAX_WORKER + 1])
def test_generator_rejects_bad_worker(worker):
    with pytest.raises(ValueError, match="worker"):
        SnowflakeGenerator(worker, clock=lambda: EPOCH_MS)


def test_generator_rejects_clock_before_epoch():
    gen = SnowflakeGenerator(1, clock=lambda: EPOCH_MS - 5)
    with pytest.raises(ValueError, match="before the Snowflake epoch 2024-01-01"):
        gen.next_id()


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_generator_uses_the_clock_and_worker():
    clock = FakeClock(EPOCH_MS + 1000)
    gen = SnowflakeGenerator(7, clock=clock)
    assert gen.worker == 7
    assert decode(gen.next_id()) == Snowflake(1000, 7, 0)
    assert decode(gen.next_id()) == Snowflake(1000, 7, 1)
    clock.now += 5
    assert decode(gen.next_id()) == Snowflake(1005, 7, 0)


def test_generator_continues_from_last_ms_when_clock_steps_back():
    clock = FakeClock(EPOCH_MS + 1000)
    gen = SnowflakeGenerator(3, clock=clock)
    gen.next_id()
    clock.now -= 500
    assert decode(gen.next_id()) == Snowflake(1000, 3, 1)
    assert decode(gen.next_id()) == Snowflake(1000, 3, 2)
    clock.now = EPOCH_MS + 1001
    assert decode(gen.next_id()) == Snowflake(1001, 3, 0)


def test_generator_runs_ahead_when_a_millisecond_is_exhausted():
    clock = FakeClock(EPOCH_MS + 1000)
    gen = SnowflakeGenerator(2, clock=clock)
    ids = [gen.next_id() for _ in range(3 * (MAX_SEQUENCE + 1) + 1)]
    assert ids == sorted(set(ids))
    assert decode(ids[MAX_SEQUENCE]) == Snowflake(1000, 2, MAX_SEQUENCE)
    assert decode(ids[MAX_SEQUENCE + 1]) == Snowflake(1001, 2, 0)
    assert decode(ids[-1]) == Snowflake(1003, 2, 0)
    # The wall clock catches up with the logical one: still no repeats.
    clock.now = EPOCH_MS + 1003
    assert decode(gen.next_id()) == Snowflake(1003, 2, 1)
    clock.now = EPOCH_MS + 1004
    assert decode(gen.next_id()) == Snowflake(1004, 2, 0)


def test_default_clock_produces_current_ids():
    gen = SnowflakeGenerator(0)
    before = datetime.now(UTC)
    ids = [gen.next_id() for _ in range(10_000)]
    assert ids == sorted(set(ids))
    assert abs((decode(ids[0]).datetime - before).total_seconds()) < 60


clock_steps = st.lists(
    st.tuples(
        st.one_of(
            st.just(0),
            st.integers(min_value=-5_000, max_value=5_000),
            st.integers(min_value=-(10**9), max_value=10**9),
        ),
        st.one_of(
            st.integers(min_value=1, max_value=30),
            st.sampled_from([MAX_SEQUENCE, MAX_SEQUENCE + 1, MAX_SEQUENCE + 2, 9_000]),
        ),
    ),
    min_size=1,
    max_size=25,
)


@given(worker_parts, clock_steps)
def test_generator_ids_strictly_increase_under_any_clock(worker, steps):
    start = EPOCH_MS + 2 * 10**9
    clock = FakeClock(start)
    gen = SnowflakeGenerator(worker, clock=clock)
    previous = -1
    for delta, calls in steps:
        clock.now = max(EPOCH_MS, clock.now + delta)
        for _ in range(calls):
            new_id = gen.next_id()
            assert new_id > previous
            decoded = decode(new_id)
            assert decoded.worker == worker
            # Never behind the wall clock, and only ahead of it when forced by a burst.
            assert decoded.unix_ms >= clock.now or decoded.unix_ms == decode(previous).unix_ms
            previous = new_id
