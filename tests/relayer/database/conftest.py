"""A settable clock for the stores that take one (owner tokens, OAuth grants)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
