"""Logs never carry a bot token, whatever library text ends up in them."""

from __future__ import annotations

import io
import logging

import orjson

from worker.logs import ClientTracebacks, JsonFormatter, MaskTokens

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def render(record: logging.LogRecord) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ClientTracebacks())
    handler.addFilter(MaskTokens())
    handler.handle(record)
    return stream.getvalue()


def test_token_in_message_and_traceback_is_masked() -> None:
    try:
        raise RuntimeError(f"GET https://api.telegram.org/bot{TOKEN}/getUpdates failed")
    except RuntimeError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "worker.receiver",
        logging.ERROR,
        __file__,
        1,
        "poll of %s failed",
        (f"/bot{TOKEN}/x",),
        exc_info,
    )
    out = render(record)
    assert TOKEN not in out
    assert TOKEN.partition(":")[2] not in out
    doc = orjson.loads(out)
    assert "<token>" in doc["msg"] and "<token>" in doc["exc"]


def test_client_library_tracebacks_become_one_line() -> None:
    try:
        raise ConnectionRefusedError(111, "refused")
    except ConnectionRefusedError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "cassandra.cluster", logging.WARNING, __file__, 1, "connect failed", (), exc_info
    )
    out = render(record)
    assert out.count("\n") == 1
    assert "Traceback" not in out and "refused" in out
