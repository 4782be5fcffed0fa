"""Shared test configuration: tests must never read the developer's own .env."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_tgbridge_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for key in list(os.environ):
        if key.upper().startswith("TGBRIDGE_") and not key.upper().startswith("TGBRIDGE_DEV_"):
            monkeypatch.delenv(key)
