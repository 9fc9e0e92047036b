"""Fixtures for the SMS gateway tests: the Africa's Talking simulator and a receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jasiyo.sms.africastalking import AfricasTalkingGateway
from jasiyo.sms.sim import AfricasTalkingSim
from tests.payments.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def at_sim(receiver: Receiver) -> Iterator[AfricasTalkingSim]:
    sim = AfricasTalkingSim(callback_delay=0.05)
    sim.dlr_url = receiver.url + "/dlr"
    sim.incoming_url = receiver.url + "/in"
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def at(at_sim: AfricasTalkingSim) -> Iterator[AfricasTalkingGateway]:
    gw = AfricasTalkingGateway(
        {"base_url": at_sim.url, "username": at_sim.username, "api_key": at_sim.api_key}, timeout=5
    )
    yield gw
    gw.close()
