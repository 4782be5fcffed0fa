"""Reading a chat back: newest first (history) or oldest first (export), bucket by bucket.

``channel_buckets`` lists the buckets that hold a channel's messages, so the walk never visits an
empty bucket and never needs ``ALLOW FILTERING``; ``max_buckets`` bounds how far one call walks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from schema.buckets import bucket_of_id, bucket_of_unix_ms
from schema.tables import MessageTables

MAX_MESSAGE_ID = (1 << 63) - 1


def message_dict(row: Any) -> dict[str, Any]:
    """A stored row as plain JSON-ready data (the raw Telegram message left out)."""
    out = {k: v for k, v in row._asdict().items() if k != "raw" and v is not None}
    if row.attachments:
        out["attachments"] = [
            {k: v for k, v in a._asdict().items() if v is not None} for a in row.attachments
        ]
    return out


async def walk(
    tables: MessageTables,
    channel_id: int,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int | None = 50,
    max_buckets: int = 10_000,
    page_size: int = 500,
) -> AsyncIterator[Any]:
    """Yield a channel's rows newest first, or oldest first when ``after`` is given."""
    newest_first = after is None
    if after is not None:
        start, bound = bucket_of_id(after) if after > 0 else 0, after
    elif before is not None:
        start, bound = bucket_of_id(before), before
    else:
        start, bound = bucket_of_unix_ms(int(time.time() * 1000)) + 1, MAX_MESSAGE_ID
    left = limit
    for bucket in await tables.buckets(channel_id, start, newest_first, max_buckets):
        cursor = bound
        while left is None or left > 0:
            size = page_size if left is None else min(page_size, left)
            rows = await tables.page(channel_id, bucket, cursor, newest_first, size)
            for row in rows:
                yield row
            if left is not None:
                left -= len(rows)
            if len(rows) < size:
                break
            cursor = rows[-1].message_id
        if left is not None and left <= 0:
            return
