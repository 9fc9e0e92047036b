"""Playwright on Debian's Chromium (never `playwright install`), a phone-sized page, and a
screenshot of every page a test visits, kept under tests/artifacts/portal/ (ignored by git)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "portal"
#: A cheap Android phone.
PHONE_VIEWPORT = {"width": 360, "height": 640}


@contextmanager
def phone_page(name: str, locale: str = "en-US", javascript: bool = True) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap --dev installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            context = browser.new_context(
                viewport=PHONE_VIEWPORT,
                locale=locale,
                is_mobile=True,
                has_touch=True,
                java_script_enabled=javascript,
            )
            page = context.new_page()
            page.set_default_timeout(20000)
            page.shots = Shots(page, name)  # type: ignore[attr-defined]
            yield page
        finally:
            browser.close()


class Shots:
    def __init__(self, page: Any, name: str) -> None:
        self.page, self.name, self.n = page, re.sub(r"[^a-z0-9_-]", "_", name.lower()), 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, label: str) -> Path:
        self.n += 1
        path = ARTIFACTS / f"{self.name}-{self.n:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path
