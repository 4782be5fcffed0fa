"""Fixtures for the consumer's integration tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from config.settings import Settings


@pytest.fixture
def fast_breaker(make_settings: Callable[..., Settings]) -> Settings:
    """Settings whose breaker half-opens after 2 s, so outage tests run quickly."""
    return make_settings(store__breaker_reset_s=2.0, store__request_timeout_s=2.0)
