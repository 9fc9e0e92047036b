"""Hypothesis profiles: CI runs every property in full, a developer's run is quick.

``HYPOTHESIS_PROFILE`` chooses; without it, ``CI=true`` means ``ci`` and anything else
``dev``. ``ci`` runs each property's written ``max_examples`` (``examples(n)`` is ``n``);
``dev`` runs a quarter of them (at least 10), so the whole suite stays a few minutes on a
laptop while CI still searches as hard as the test asks. Neither has a deadline: a slow
machine is not a bug (the house rule), and a failure prints the blob that reproduces it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILES = ("ci", "dev")
NAME = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
FULL = NAME != "dev"


def register() -> None:
    """Register both profiles and load the chosen one (from the root conftest)."""
    settings.register_profile(
        "ci", max_examples=100, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile(
        "dev", max_examples=25, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile(NAME)


def examples(n: int) -> int:
    """``max_examples`` for a property written to try ``n``: all of them in CI."""
    return n if FULL else max(10, n // 4)
