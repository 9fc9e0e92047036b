"""Message templates in English and Swahili, with the variables they may use.

A template is text with ``{variable}`` places (``str.format`` syntax, no attribute access or
format specs). The ISP edits them in ``[sms.templates]`` (``reminder_en``, ``reminder_sw``,
...); a template naming a variable outside :data:`VARIABLES` is refused when the config is
read, so a typo stops ``agent run`` at start instead of sending "{nmae}" to customers.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

LANGUAGES = ("en", "sw")
KINDS = ("reminder", "receipt", "suspension")
#: Every variable a template may use. Those a kind does not know render as "".
VARIABLES: dict[str, str] = {
    "name": "the customer's name (or username)",
    "plan": "the plan's name",
    "amount": "what to pay (reminder) or what was received (receipt), e.g. KES 1,500.00",
    "due_date": "when service expires, local time (YYYY-MM-DD HH:MM)",
    "days": "days left before expiry (reminder)",
    "paybill": "the M-Pesa paybill or till ([payments.mpesa] shortcode / till_number)",
    "account": "the account number to pay to (the username)",
    "pay_link": "a pay link ([sms] pay_link with {account})",
    "reference": "the payment reference (receipt)",
    "paid_until": "service paid until, local time (receipt)",
    "balance": "the wallet balance (receipt)",
    "reason": "why service was suspended (suspension)",
}
DEFAULTS: dict[str, str] = {
    "reminder_en": "Hi {name}, your {plan} internet expires in {days} day(s), on {due_date}. "
    "Pay {amount} to paybill {paybill}, account {account}, to stay connected.",
    "reminder_sw": "Habari {name}, intaneti yako ya {plan} itaisha baada ya siku {days}, "
    "tarehe {due_date}. Lipa {amount} kwa paybill {paybill}, akaunti "
    "{account}, ili uendelee kuunganishwa.",
    "receipt_en": "Received {amount}, ref {reference}. Thank you. Service paid until {paid_until}.",
    "receipt_sw": "Tumepokea {amount}, kumbukumbu {reference}. Asante. Huduma imelipiwa hadi {paid_until}.",
    "suspension_en": "Your {plan} internet service is suspended ({reason}). Pay {amount} to "
    "paybill {paybill}, account {account}; it comes back within a minute.",
    "suspension_sw": "Huduma yako ya intaneti ya {plan} imesitishwa ({reason}). Lipa {amount} "
    "kwa paybill {paybill}, akaunti {account}; itarudi ndani ya dakika moja.",
}


def used(text: str) -> set[str]:
    """The variables ``text`` uses; ValueError if it is not a valid template."""
    out = set()
    for _, name, spec, conv in string.Formatter().parse(text):
        if name is None:
            continue
        if not name.isidentifier() or spec or conv:
            raise ValueError(f"{{{name}}} is not a plain variable")
        out.add(name)
    return out


def check_text(text: str, where: str, allowed: set[str] | None = None) -> None:
    allowed = set(VARIABLES) if allowed is None else allowed
    try:
        names = used(text)
    except ValueError as exc:
        raise ValueError(f"{where}: not a valid template ({exc})") from None
    unknown = sorted(names - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown variable {{{unknown[0]}}} (known: {', '.join(sorted(allowed))})")


def check(templates: Any) -> None:
    """Refuse a configured template with an unknown variable (``[sms.templates]``)."""
    for key in DEFAULTS:
        text = getattr(templates, key, "")
        if text:
            check_text(text, f"[sms.templates] {key}")


def template(templates: Any, kind: str, language: str) -> str | None:
    key = f"{kind}_{language}"
    if key not in DEFAULTS:
        return None
    return getattr(templates, key, "") or DEFAULTS[key]


def render(text: str, values: Mapping[str, object]) -> str:
    """Fill ``text``; a variable without a value becomes "" (never the raw placeholder)."""
    safe = {k: "" if values.get(k) is None else str(values.get(k)) for k in used(text)}
    return text.format(**safe)


def clock_minutes(text: str) -> int | None:
    """``"21:30"`` -> 1290; None if it is not HH:MM."""
    hh, sep, mm = text.partition(":")
    if not sep or not (hh.isdigit() and mm.isdigit()) or len(mm) != 2:
        return None
    h, m = int(hh), int(mm)
    return h * 60 + m if 0 <= h <= 24 and 0 <= m < 60 and h * 60 + m <= 1440 else None
