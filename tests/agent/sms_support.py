"""Helpers for the SMS tests: an agent config pointing at the Africa's Talking simulator."""

from __future__ import annotations

from pathlib import Path

from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.sms.sim import AfricasTalkingSim
from tests.support.config import make_config


def sms_toml(sim: AfricasTalkingSim, extra: str = "") -> str:
    """``[sms]`` for the simulator; ``extra`` lines (``[sms]`` keys first) win."""
    defaults = "".join(
        f"{k} = {v}\n"
        for k, v in (("retry_first", "60.0"), ("max_attempts", "3"), ("rate_per_minute", "6000"))
        if f"{k} =" not in extra
    )
    return (
        f'[sms]\nprovider = "africastalking"\nbase_url = "{sim.url}"\n'
        f'username = "{sim.username}"\napi_key = "{sim.api_key}"\nsender_id = "JASIYO"\n'
        f"{defaults}{extra}"
    )


def sms_config(tmp_path: Path, sim: AfricasTalkingSim, extra: str = "", before: str = "") -> Config:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_config(tmp_path, before + '[payments.mpesa]\nshortcode = "174379"\n' + sms_toml(sim, extra))


def add(
    store: Store, username: str, phone: str | None, consent: bool, plan: str = "home", name: str | None = None
) -> None:
    subs.add(
        store,
        subs.NewSubscriber.build(
            username, password=f"{username}-pw", plan=plan, phone=phone, name=name, sms_consent=consent
        ),
        "test",
    )
