"""Reaching into a store's pooled connections, for tests that need a deaf server."""

from __future__ import annotations

from typing import Any

from schema.store import Store


def reading(store: Store, on: bool, transports: list[Any] | None = None) -> list[Any]:
    """Stop (or resume) reading answers on every pooled connection; returns the transports."""
    if transports is None:
        transports = [
            c._transport
            for pool in store.session._pools.values()
            for c in pool._connections.values()
        ]
    for t in transports:
        if on:
            t.resume_reading()
        else:
            t.pause_reading()
    return transports
