"""Changes to a subscriber's account that involve billing, above both billing and subscribers.

A plan change is billed (prorated by :func:`jasiyo.agent.billing.change_plan`, in the
tenant's time zone and grace from ``cfg``); the other fields are profile changes
(:func:`jasiyo.agent.subscribers.update`). `subscriber update` and the CSV import
(:mod:`.imports`) both come through :func:`update`, so they bill a plan change alike.
"""

from __future__ import annotations

from typing import Any

from jasiyo.agent import billing
from jasiyo.agent import subscribers as subs
from jasiyo.agent.records import Subscriber
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import ValidationError


def update(
    store: Store,
    cfg: Config,
    username: str,
    actor: str,
    *,
    plan: str | None = None,
    how: str = "cli",
    **changes: Any,
) -> Subscriber:
    """Move to ``plan`` (billed) and change profile fields, all or nothing.

    ``changes`` are :func:`subscribers.update`'s fields (not the plan); ``how`` records how a
    change of SMS consent was given (cli, csv, portal).
    """
    if "plan" in changes:
        raise ValidationError("give the new plan as plan=, so that it is billed")
    if plan is None and not changes:
        raise ValidationError("nothing to change: give at least one option")
    with store.transaction():  # a bad phone must not leave a plan change behind
        if plan is not None:
            billing.change_plan(store, username, plan, actor, cfg)
        if changes:
            subs.update(store, username, actor, how=how, **changes)
    return subs.get(store, username)
