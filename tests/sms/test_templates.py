"""Templates: known variables only, refused at start otherwise; English and Swahili."""

from __future__ import annotations

from pathlib import Path

import pytest

from jasiyo.config import parse
from jasiyo.errors import ConfigError
from jasiyo.sms import templates as tpl


def test_every_built_in_template_uses_known_variables() -> None:
    for key, text in tpl.DEFAULTS.items():
        tpl.check_text(text, key)
    assert set(tpl.DEFAULTS) == {f"{k}_{lang}" for k in tpl.KINDS for lang in tpl.LANGUAGES}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hi {nmae}", r"unknown variable \{nmae\}"),
        ("Hi {name.__class__}", "not a valid template"),
        ("Hi {name!r}", "not a valid template"),
        ("Hi {name:>10}", "not a valid template"),
        ("Hi {name", "not a valid template"),
    ],
)
def test_a_bad_template_stops_the_agent_at_start(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse(f"[sms.templates]\nreminder_sw = '{text}'\n", tmp_path)


def test_an_unknown_template_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="reminder_fr: unknown setting"):
        parse("[sms.templates]\nreminder_fr = 'Bonjour {name}'\n", tmp_path)


def test_configured_templates_render_and_missing_values_are_blank(tmp_path: Path) -> None:
    cfg = parse(
        "[sms]\nlanguage = 'sw'\n[sms.templates]\nreminder_sw = "
        "'{name}: lipa {amount} kabla ya {due_date} {pay_link}'\n",
        tmp_path,
    )
    text = tpl.template(cfg.sms.templates, "reminder", cfg.sms.language)
    assert text is not None
    assert (
        tpl.render(text, {"name": "Amina", "amount": "KES 1,500.00", "due_date": "2026-12-04 10:00"})
        == "Amina: lipa KES 1,500.00 kabla ya 2026-12-04 10:00 "
    )
    assert tpl.template(cfg.sms.templates, "receipt", "sw") == tpl.DEFAULTS["receipt_sw"]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("language = 'fr'", "language"),
        ("quiet_start = '25:00'", "quiet_start"),
        ("rate_per_minute = 0", "rate_per_minute"),
        ("provider = 'twilio'", "provider"),
        ("provider = 'africastalking'", "needs username and api_key"),
        ("base_url = 'http://api.africastalking.com'", "must be https"),
        ("pay_link = 'https://pay.example/{user}'", r"unknown variable \{user\}"),
    ],
)
def test_bad_sms_settings_are_refused(tmp_path: Path, extra: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse(f"[sms]\n{extra}\n", tmp_path)
