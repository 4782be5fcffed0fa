"""Keeping bot tokens out of logs, errors and output.

Bot API URLs carry the token (``/bot<token>/getUpdates``), and aiohttp's and aiogram's exception
messages may quote the URL; every such text passes through :func:`redact` before it is shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Any token-shaped run, for texts whose token is not known (digits, a colon, 30+ secret chars).
_TOKEN_SHAPE = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")
MASK = "<token>"


def redact(text: str, tokens: Iterable[str] = ()) -> str:
    """``text`` with each of ``tokens``, and anything shaped like a token, masked."""
    for token in tokens:
        if token:
            text = text.replace(token, MASK).replace(token.replace(":", "%3A"), MASK)
            secret = token.partition(":")[2]
            if len(secret) >= 8:
                text = text.replace(secret, MASK)
    return _TOKEN_SHAPE.sub(MASK, text)


def describe(exc: BaseException, tokens: Iterable[str] = ()) -> str:
    """A one-line, token-free description of an exception: its type and redacted message."""
    message = str(exc).replace("\n", " ").strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return redact(text, tokens)
