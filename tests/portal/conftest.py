from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.payments.mpesa.sim import DarajaSim
from jasiyo.payments.paystack.sim import PaystackSim
from tests.agent.billing_support import NasListener
from tests.portal.support import World, running_world


@pytest.fixture
def daraja() -> Iterator[DarajaSim]:
    sim = DarajaSim(callback_delay=0.3)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def paystack() -> Iterator[PaystackSim]:
    sim = PaystackSim(callback_delay=0.3)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def nas() -> Iterator[NasListener]:
    listener = NasListener()
    yield listener
    listener.close()


@pytest.fixture
def world(tmp_path: Path, daraja: DarajaSim, paystack: PaystackSim, nas: NasListener) -> Iterator[World]:
    with running_world(tmp_path, daraja, paystack, nas) as w:
        yield w
