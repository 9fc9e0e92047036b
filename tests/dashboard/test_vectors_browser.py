"""The shared vectors through the browser's modules, in Chromium (headless, Debian's build):
the page jasiyo/cloud/webapp/vectors/run.html runs every vector of sync-vectors.json (the
file tests/dashboard/test_vectors.py checks against the Python code), served by the real cloud
at /app/ under its CSP, and reports each."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jasiyo.sync.vectors import WEBAPP
from tests.portal.browser import phone_page
from tests.sync.harness import Cloud

pytestmark = pytest.mark.slow


@pytest.fixture
def app_url(cloud: Cloud) -> str:
    """The web app as the cloud serves it (/app/, with its CSP: no inline script)."""
    return f"{cloud.url}/app/"


def _run_vectors(page: Any, app_url: str) -> dict[str, Any]:
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(app_url + "vectors/run.html")
    # The page's CSP forbids evaluating script, so the result is read from the DOM.
    page.wait_for_selector("#result[data-done]", state="attached", timeout=60000)
    result: dict[str, Any] = json.loads(page.text_content("#result") or "{}")
    assert not problems, problems  # a CSP violation or a module that failed to load shows here
    assert "script-src 'self'" in (
        page.context.request.get(app_url + "vectors/run.js").headers.get("content-security-policy") or ""
    )
    return result


def test_every_shared_vector_passes_in_chromium(app_url: str) -> None:
    with phone_page("dashboard-vectors") as page:
        result = _run_vectors(page, app_url)
        page.shots("vectors")
    failed = [f"{r['group']}: {r['name']}: {r['detail']}" for r in result["results"] if not r["ok"]]
    assert not failed, "\n".join(failed)
    groups = {r["group"] for r in result["results"]}
    assert groups >= {"envelope", "plain", "signature", "wrapped", "recovery", "hlc", "snapshot", "fold"}
    doc = json.loads((WEBAPP / "vectors" / "sync-vectors.json").read_text(encoding="utf-8"))
    ran = [r for r in result["results"] if r["group"] != "misc"]
    assert len(ran) == sum(len(v) for v in doc.values() if isinstance(v, list))  # every vector ran


def test_a_wrong_passphrase_and_a_tampered_event_are_refused_with_a_clear_message(app_url: str) -> None:
    with phone_page("dashboard-vector-errors") as page:
        messages = _run_vectors(page, app_url)["messages"]
    assert messages["wrongPassphrase"] == "wrong passphrase: the tenant keys did not unlock"
    assert messages["tampered"] == (
        "event 0190a000-0000-7000-8000-000000000001 from agent 0190a000-0000-7000-8000-0000000000aa "
        "failed authentication: tampered with, or moved from another event or tenant; refusing it"
    )
    assert messages["notRecovery"].startswith("this is not a recovery file")
