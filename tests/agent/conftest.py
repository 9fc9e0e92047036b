"""Fixtures of the billing and enforcement tests: a fake NAS, a controlled clock, a store
with one paying subscriber online (tests that need less define their own ``bcfg``/``db``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.agent import payments
from jasiyo.agent.store import Store
from jasiyo.config import Config
from tests.agent.billing_support import (
    Clock,
    NasListener,
    add_nas_router,
    add_sub,
    billing_config,
    open_store,
    seed_plans,
    start_session,
)


@pytest.fixture
def nas() -> Iterator[NasListener]:
    listener = NasListener()
    yield listener
    listener.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bcfg(tmp_path: Path) -> Config:
    return billing_config(tmp_path, coa_timeout=0.2, coa_retries=0)


@pytest.fixture
def db(bcfg: Config, clock: Clock, nas: NasListener) -> Iterator[Store]:
    s = open_store(bcfg, clock)
    seed_plans(s)
    add_nas_router(s, nas.port)
    add_sub(s, "alice")
    payments.record(s, bcfg, "alice", "1000", "A-1", actor="test")
    start_session(s, "alice", "s-1")
    yield s
    s.close()
