"""The conformance suite against RouterOS: the simulator over TCP, over api-ssl with a
certificate the driver verifies (CA file, then a pinned fingerprint), and a lab router when
JASIYO_LAB_MIKROTIK_HOST / _USER / _PASSWORD (and optionally _PORT, _TLS=1, _CA_FILE,
_FINGERPRINT) are set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.drivers.mikrotik import MikrotikDriver
from jasiyo.drivers.mikrotik.connection import RouterOSConnection
from jasiyo.drivers.mikrotik.sim import RouterOSSim
from jasiyo.drivers.routerstate import RouterConfig
from tests.drivers.conformance import DriverConformance, RouterUnderTest
from tests.drivers.mikrotik_support import (
    MikrotikInspector,
    SimFaults,
    fingerprint,
    self_signed,
    sim_call,
)

USERS = {"jasiyo": "s3cret-api"}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def _sim_router(sim: RouterOSSim, **cfg: object) -> RouterUnderTest:
    config = RouterConfig(
        host="127.0.0.1",
        port=sim.port,
        username="jasiyo",
        password=USERS["jasiyo"],
        name="sim",
        timeout=5,
        pay_page="10.200.0.1",
        **cfg,
    )  # type: ignore[arg-type]
    return RouterUnderTest(config, MikrotikInspector(sim_call(sim), sim=sim), SimFaults(sim))


class TestMikrotikOverTCP(DriverConformance):
    driver_class = MikrotikDriver

    @pytest.fixture
    def router(self) -> Iterator[RouterUnderTest]:
        with RouterOSSim(users=USERS) as sim:
            yield _sim_router(sim)


class TestMikrotikOverApiSslWithCA(DriverConformance):
    driver_class = MikrotikDriver

    @pytest.fixture
    def router(self, cert: tuple[Path, Path]) -> Iterator[RouterUnderTest]:
        with RouterOSSim(users=USERS, certfile=str(cert[0]), keyfile=str(cert[1])) as sim:
            yield _sim_router(sim, tls=True, ca_file=str(cert[0]))


class TestMikrotikOverApiSslPinned(DriverConformance):
    driver_class = MikrotikDriver

    @pytest.fixture
    def router(self, cert: tuple[Path, Path]) -> Iterator[RouterUnderTest]:
        with RouterOSSim(users=USERS, certfile=str(cert[0]), keyfile=str(cert[1])) as sim:
            yield _sim_router(sim, tls=True, fingerprint=fingerprint(cert[0]))


_LAB = "JASIYO_LAB_MIKROTIK_"


@pytest.mark.skipif(not os.environ.get(_LAB + "HOST"), reason=f"{_LAB}HOST not set")
class TestMikrotikLab(DriverConformance):
    """Creates and removes jt-* objects and every jasiyo-tagged object: use a lab router."""

    driver_class = MikrotikDriver

    @pytest.fixture
    def router(self) -> Iterator[RouterUnderTest]:
        env = os.environ
        config = RouterConfig(
            host=env[_LAB + "HOST"],
            username=env.get(_LAB + "USER", "admin"),
            password=env.get(_LAB + "PASSWORD", ""),
            name="lab",
            port=int(env[_LAB + "PORT"]) if env.get(_LAB + "PORT") else None,
            tls=env.get(_LAB + "TLS") == "1",
            ca_file=env.get(_LAB + "CA_FILE"),
            fingerprint=env.get(_LAB + "FINGERPRINT"),
            timeout=10,
            pay_page="10.200.0.1",
        )
        conn = RouterOSConnection(config)
        conn.open()
        try:
            yield RouterUnderTest(config, MikrotikInspector(conn.call), None)
        finally:
            conn.close()
