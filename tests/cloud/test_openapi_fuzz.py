"""The OpenAPI document is the truth, and schemathesis checks the server.

schemathesis (its CLI, as CI would run it) generates requests from ``/v1/openapi.json``
served by a real cloud on a real socket and checks every answer against the document: no
5xx, only documented statuses and bodies, schema-valid requests accepted, schema-invalid
ones refused, undeclared methods answered 405 with ``Allow``. The hooks in st_hooks.py call
as the operator, the tenant admin or the agent (signing each request on the wire).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.routing import Route

from jasiyo.agent import cloudlink
from jasiyo.agent.store import Store
from jasiyo.cloud.app import CloudSettings, create_app
from jasiyo.cloud.openapi import OPENAPI
from tests.sync.harness import Tenant, sqlite_cloud

ROOT = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).with_name("st")


def test_every_route_is_documented_with_its_methods(tmp_path: Path) -> None:
    from jasiyo.cloud.backend import open_storage

    storage = open_storage(str(tmp_path / "c.db"))
    try:
        app = create_app(storage)
        served = {r.path: set(r.methods or ()) - {"HEAD"} for r in app.routes if isinstance(r, Route)}
    finally:
        storage.close()
    documented = {p: {m.upper() for m in ops} for p, ops in OPENAPI["paths"].items()}
    assert served == documented


@pytest.mark.slow  # a long property run (schemathesis in its own process): 6-15 s
@pytest.mark.skipif(not ST.exists(), reason="schemathesis is not installed (dev extra)")
def test_schemathesis_finds_no_drift(tmp_path: Path) -> None:
    # max_wait: long-polls answer at once (the document allows up to 30 s; the cloud caps).
    cloud = sqlite_cloud(tmp_path, CloudSettings(rate=100_000, burst=100_000, max_wait=0.1))
    try:
        isp = Tenant(cloud, tmp_path / "isp").setup(1)
        cfg = isp.agents[0]
        s = Store.open(cfg)
        agent_id = s.agent_id
        s.close()
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.cloud.st_hooks",
            "PYTHONPATH": str(ROOT),
            "JASIYO_ST_KEY": str(cloudlink.signing_key_path(cfg)),
            "JASIYO_ST_TENANT": isp.id,
            "JASIYO_ST_AGENT": agent_id,
            "JASIYO_ST_OPERATOR": cloud.operator,
            "JASIYO_ST_ADMIN": isp.admin,
        }
        proc = subprocess.run(
            [
                str(ST),
                "run",
                cloud.url + "/v1/openapi.json",
                "--checks",
                "all",
                # Every call is made with real credentials (st_hooks), so the check that a
                # generated, invalid credential is refused cannot hold; test_api.py shows
                # unsigned, stale, tampered and foreign-token requests refused instead.
                "--exclude-checks",
                "ignored_auth",
                "--max-examples",
                "12",
                "--seed",
                "10",
                "--workers",
                "1",
                "--no-shrink",
                "--suppress-health-check",
                "all",
                "--warnings",
                "off",
                "--request-timeout",
                "20",
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )  # its cache too
    finally:
        cloud.server.stop()
        cloud.storage.close()
    summary = proc.stdout[proc.stdout.find("FAILURES") :][:6000]
    assert proc.returncode == 0, summary or proc.stdout[-3000:] + proc.stderr[-2000:]
