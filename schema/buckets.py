"""Time buckets: whole 10-day windows since the Snowflake epoch, used as partition keys.

Bucketing a chat's messages by time keeps each partition bounded in size; readers walk
history bucket by bucket, newest first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from schema.snowflake import EPOCH, EPOCH_MS, decode

BUCKET_MS = 10 * 24 * 60 * 60 * 1000


def bucket_of_ms(ms_since_epoch: int) -> int:
    """Bucket holding a time given as milliseconds since the Snowflake epoch."""
    if ms_since_epoch < 0:
        raise ValueError(
            f"ms_since_epoch {ms_since_epoch} is before the Snowflake epoch 2024-01-01"
        )
    return ms_since_epoch // BUCKET_MS


def bucket_of_unix_ms(unix_ms: int) -> int:
    """Bucket holding a time given as milliseconds since the Unix epoch."""
    if unix_ms < EPOCH_MS:
        raise ValueError(f"unix_ms {unix_ms} is before the Snowflake epoch 2024-01-01")
    return bucket_of_ms(unix_ms - EPOCH_MS)


def bucket_of_id(snowflake_id: int) -> int:
    """Bucket holding the creation time of a Snowflake ID."""
    return bucket_of_ms(decode(snowflake_id).ms_since_epoch)


def bucket_of_datetime(dt: datetime) -> int:
    """Bucket holding a timezone-aware datetime; naive datetimes are refused as ambiguous."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"datetime {dt.isoformat()} is naive; give it a timezone")
    if dt < EPOCH:
        raise ValueError(f"datetime {dt.isoformat()} is before the Snowflake epoch 2024-01-01")
    return bucket_of_ms((dt - EPOCH) // timedelta(milliseconds=1))


def bucket_bounds(bucket: int) -> tuple[int, int]:
    """First and last (inclusive) Unix millisecond that fall into a bucket."""
    if bucket < 0:
        raise ValueError(f"bucket {bucket} is before the Snowflake epoch 2024-01-01")
    first = EPOCH_MS + bucket * BUCKET_MS
    return first, first + BUCKET_MS - 1


def buckets_between(newest_bucket: int, oldest_bucket: int) -> Iterator[int]:
    """Buckets from newest_bucket down to oldest_bucket, both included, for walking history."""
    if oldest_bucket < 0:
        raise ValueError(f"oldest_bucket {oldest_bucket} is before the Snowflake epoch 2024-01-01")
    if newest_bucket < oldest_bucket:
        raise ValueError(
            f"newest_bucket {newest_bucket} is older than oldest_bucket {oldest_bucket}"
        )
    return iter(range(newest_bucket, oldest_bucket - 1, -1))
