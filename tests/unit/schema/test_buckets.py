from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schema.buckets import (
    BUCKET_MS,
    bucket_bounds,
    bucket_of_datetime,
    bucket_of_id,
    bucket_of_ms,
    bucket_of_unix_ms,
    buckets_between,
)
from schema.snowflake import (
    EPOCH_MS,
    MAX_SEQUENCE,
    MAX_TIMESTAMP,
    MAX_WORKER,
    compose,
    decode,
)

EPOCH_DT = datetime(2024, 1, 1, tzinfo=UTC)
buckets = st.integers(min_value=0, max_value=MAX_TIMESTAMP // BUCKET_MS)


def test_bucket_is_ten_days():
    assert BUCKET_MS == 864_000_000 == 10 * 24 * 3600 * 1000


def test_boundaries():
    assert bucket_of_ms(0) == 0
    assert bucket_of_ms(BUCKET_MS - 1) == 0
    assert bucket_of_ms(BUCKET_MS) == 1
    assert bucket_of_unix_ms(EPOCH_MS) == 0
    assert bucket_of_unix_ms(EPOCH_MS + BUCKET_MS - 1) == 0
    assert bucket_of_unix_ms(EPOCH_MS + BUCKET_MS) == 1
    assert bucket_of_datetime(EPOCH_DT + timedelta(days=10, microseconds=-1)) == 0
    assert bucket_of_datetime(EPOCH_DT + timedelta(days=10)) == 1
    assert bucket_of_datetime(datetime(2024, 1, 11, tzinfo=UTC)) == 1
    assert bucket_bounds(0) == (EPOCH_MS, EPOCH_MS + BUCKET_MS - 1)


@given(buckets)
def test_last_ms_of_a_bucket_and_first_ms_of_the_next(bucket):
    first, last = bucket_bounds(bucket)
    assert last - first + 1 == BUCKET_MS
    assert bucket_of_unix_ms(first) == bucket
    assert bucket_of_unix_ms(last) == bucket
    assert bucket_of_unix_ms(last + 1) == bucket + 1
    assert bucket_bounds(bucket + 1)[0] == last + 1
    if bucket > 0:
        assert bucket_of_unix_ms(first - 1) == bucket - 1


@given(
    st.integers(min_value=0, max_value=MAX_TIMESTAMP),
    st.integers(min_value=0, max_value=MAX_WORKER),
    st.integers(min_value=0, max_value=MAX_SEQUENCE),
)
def test_bucket_of_id_is_bucket_of_its_timestamp(ms, worker, sequence):
    snowflake_id = compose(ms, worker, sequence)
    decoded = decode(snowflake_id)
    expected = bucket_of_ms(ms)
    assert bucket_of_id(snowflake_id) == expected
    assert bucket_of_unix_ms(decoded.unix_ms) == expected
    assert bucket_of_datetime(decoded.datetime) == expected


@given(st.integers(min_value=EPOCH_MS, max_value=EPOCH_MS + MAX_TIMESTAMP))
def test_bucket_bounds_round_trip(unix_ms):
    first, last = bucket_bounds(bucket_of_unix_ms(unix_ms))
    assert first <= unix_ms <= last


def test_bucket_of_datetime_honours_other_timezones():
    plus_two = timezone(timedelta(hours=2))
    # 2024-01-11 01:59:59.999+02:00 is still 2024-01-10 23:59:59.999 UTC.
    assert bucket_of_datetime(datetime(2024, 1, 11, 1, 59, 59, 999_000, tzinfo=plus_two)) == 0
    assert bucket_of_datetime(datetime(2024, 1, 11, 2, tzinfo=plus_two)) == 1


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="naive"):
        bucket_of_datetime(datetime(2024, 6, 1))


def test_before_epoch_errors():
    message = "before the Snowflake epoch 2024-01-01"
    with pytest.raises(ValueError, match=message):
        bucket_of_ms(-1)
    with pytest.raises(ValueError, match=message):
        bucket_of_unix_ms(EPOCH_MS - 1)
    with pytest.raises(ValueError, match=message):
        bucket_of_datetime(EPOCH_DT - timedelta(microseconds=1))
    with pytest.raises(ValueError, match=message):
        bucket_bounds(-1)
    with pytest.raises(ValueError, match=message):
        buckets_between(3, -1)


def test_buckets_between_walks_newest_first():
    assert list(buckets_between(5, 2)) == [5, 4, 3, 2]
    assert list(buckets_between(0, 0)) == [0]
    with pytest.raises(ValueError, match="newest_bucket"):
        buckets_between(2, 5)
