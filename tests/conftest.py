"""Shared test configuration: tests must never read the developer's own .env."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Property tests assert properties, never speed: on a shared CI host any single example can be
# descheduled for longer than Hypothesis's default 200 ms deadline (a snowflake example took
# 282 ms once and failed a fresh clone's run), so no test here has a deadline.
settings.register_profile("tgbridge", deadline=None)
settings.load_profile("tgbridge")


@pytest.fixture(autouse=True)
def _clean_tgbridge_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("TGBRIDGE_") and not key.upper().startswith("TGBRIDGE_DEV_"):
            monkeypatch.delenv(key)


_skipped_integration: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "/integration/" in report.nodeid.replace("\\", "/"):
        _skipped_integration.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped integration test did not run: it fails the run instead of passing quietly."""
    if _skipped_integration and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped_integration:
        terminalreporter.write_line(
            f"FAILED: {len(_skipped_integration)} integration test(s) were skipped, so they did "
            "not run against the real services:",
            red=True,
        )
        for nodeid in _skipped_integration:
            terminalreporter.write_line(f"  {nodeid}", red=True)
