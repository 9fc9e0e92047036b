"""Fixtures for the payment provider tests: a local callback receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.payments.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Our callback endpoint, played by a small HTTP server on 127.0.0.1."""
    r = Receiver().start()
    yield r
    r.stop()
