"""The portal's words in English and Swahili.

The language is the ``lang`` cookie (set by the toggle on every page), else the browser's
``Accept-Language``, else English. Messages from the library (a ValidationError) are
English; the pages wrap them in the customer's language.
"""

from __future__ import annotations

LANGS = ("en", "sw")

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Internet",
        "help": "Need help? Call",
        "choose": "Choose a package",
        "pay_with_mpesa": "Pay with M-Pesa",
        "phone": "M-Pesa phone number",
        "phone_hint": "e.g. 0712 345 678",
        "sms_consent": "Send me SMS about my package (reminders, receipts). Reply STOP to end.",
        "buy": "Buy",
        "have_voucher": "Have a voucher?",
        "voucher_code": "Voucher code",
        "redeem": "Connect",
        "no_offers": "No packages are on sale here right now.",
        "check_phone": "Check your phone",
        "check_phone_text": "Enter your M-Pesa PIN on the prompt to pay. This page moves on by itself.",
        "waiting": "Waiting for M-Pesa...",
        "refresh": "Check again",
        "paid": "Paid. Connecting you...",
        "connecting": "Connecting you to the internet...",
        "continue": "Continue",
        "cancelled": "The payment was cancelled",
        "cancelled_text": "You pressed Cancel on the M-Pesa prompt, so nothing was paid.",
        "failed": "The payment did not go through",
        "failed_text": "M-Pesa says: {reason}. Nothing was paid.",
        "timeout": "No answer from your phone",
        "timeout_text": "The M-Pesa prompt was not answered in time. Nothing was paid.",
        "try_again": "Try again",
        "error": "Sorry",
        "bad_request": "This request cannot be used.",
        "too_many": "Too many attempts. Please wait a few minutes and try again.",
        "expired_form": "This page expired. Please start again.",
        "not_from_hotspot": "Open this page from the Wi-Fi login page.",
        "pay_title": "Pay your bill",
        "account": "Account",
        "due": "Amount due",
        "status": "Status",
        "status_active": "active",
        "status_grace": "in grace",
        "status_suspended": "suspended",
        "status_terminated": "closed",
        "nothing_due": "Nothing is due on this account.",
        "pay_unknown": "We cannot tell which account this connection belongs to. Please call your provider.",
        "pay_card": "Pay by card",
        "email": "Email (for the receipt)",
        "restored": "Thank you, your payment was received",
        "restored_text": "Your internet is back. You may need to reconnect once.",
        "reason_insufficient_funds": "not enough money in the M-Pesa account",
        "reason_wrong_pin": "wrong PIN",
        "reason_unreachable": "the phone could not be reached",
        "reason_failed": "the payment failed",
        "lang_other": "Kiswahili",
        "home": "Start again",
    },
    "sw": {
        "title": "Intaneti",
        "help": "Unahitaji msaada? Piga simu",
        "choose": "Chagua kifurushi",
        "pay_with_mpesa": "Lipa kwa M-Pesa",
        "phone": "Namba ya simu ya M-Pesa",
        "phone_hint": "mf. 0712 345 678",
        "sms_consent": "Nitumie SMS kuhusu kifurushi changu (vikumbusho, risiti). Jibu ACHA kusitisha.",
        "buy": "Nunua",
        "have_voucher": "Una vocha?",
        "voucher_code": "Nambari ya vocha",
        "redeem": "Unganisha",
        "no_offers": "Hakuna vifurushi vinavyouzwa hapa kwa sasa.",
        "check_phone": "Angalia simu yako",
        "check_phone_text": "Weka PIN yako ya M-Pesa kwenye ujumbe ili ulipe. Ukurasa huu "
        "utaendelea wenyewe.",
        "waiting": "Inasubiri M-Pesa...",
        "refresh": "Angalia tena",
        "paid": "Umelipa. Tunakuunganisha...",
        "connecting": "Tunakuunganisha kwenye intaneti...",
        "continue": "Endelea",
        "cancelled": "Malipo yameghairiwa",
        "cancelled_text": "Ulibonyeza Ghairi kwenye ujumbe wa M-Pesa, kwa hiyo hakuna kilicholipwa.",
        "failed": "Malipo hayakufanikiwa",
        "failed_text": "M-Pesa inasema: {reason}. Hakuna kilicholipwa.",
        "timeout": "Simu yako haikujibu",
        "timeout_text": "Ujumbe wa M-Pesa haukujibiwa kwa wakati. Hakuna kilicholipwa.",
        "try_again": "Jaribu tena",
        "error": "Samahani",
        "bad_request": "Ombi hili haliwezi kutumika.",
        "too_many": "Majaribio mengi mno. Tafadhali subiri dakika chache ujaribu tena.",
        "expired_form": "Ukurasa huu umepitwa na wakati. Tafadhali anza upya.",
        "not_from_hotspot": "Fungua ukurasa huu kutoka kwenye ukurasa wa kuingia wa Wi-Fi.",
        "pay_title": "Lipa bili yako",
        "account": "Akaunti",
        "due": "Kiasi cha kulipa",
        "status": "Hali",
        "status_active": "inatumika",
        "status_grace": "muda wa ziada",
        "status_suspended": "imesimamishwa",
        "status_terminated": "imefungwa",
        "nothing_due": "Hakuna deni kwenye akaunti hii.",
        "pay_unknown": "Hatuwezi kujua muunganisho huu ni wa akaunti gani. Tafadhali "
        "mpigie mtoa huduma wako.",
        "pay_card": "Lipa kwa kadi",
        "email": "Barua pepe (ya risiti)",
        "restored": "Asante, malipo yako yamepokelewa",
        "restored_text": "Intaneti yako imerudi. Huenda ukahitaji kuunganisha upya mara moja.",
        "reason_insufficient_funds": "salio la M-Pesa halitoshi",
        "reason_wrong_pin": "PIN si sahihi",
        "reason_unreachable": "simu haikupatikana",
        "reason_failed": "malipo hayakufanikiwa",
        "lang_other": "English",
        "home": "Anza upya",
    },
}


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The page language: the toggle's cookie, else the browser's first known choice."""
    if cookie in LANGS:
        return cookie
    best, best_q = "en", -1.0
    for i, part in enumerate((accept_language or "")[:200].split(",")[:10]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGS and q - i * 1e-3 > best_q:
            best, best_q = lang, q - i * 1e-3
    return best


_UNITS = {
    "en": {
        "min": ("minute", "minutes"),
        "h": ("hour", "hours"),
        "d": ("day", "days"),
        "w": ("week", "weeks"),
        "mo": ("month", "months"),
    },
    "sw": {
        "min": ("dakika", "dakika"),
        "h": ("saa", "saa"),
        "d": ("siku", "siku"),
        "w": ("wiki", "wiki"),
        "mo": ("mwezi", "miezi"),
    },
}


def period(text: str, lang: str) -> str:
    """A plan period (``1h``, ``24h``, ``7d``, ``1mo``) in words: "24 hours", "saa 24"."""
    digits = "".join(c for c in text if c.isdigit())
    unit = text[len(digits) :]
    names = _UNITS.get(lang, _UNITS["en"]).get(unit)
    if not digits or names is None:
        return text
    n = int(digits)
    name = names[0] if n == 1 else names[1]
    return f"{n} {name}" if lang == "en" else f"{name} {n}"


def words(lang: str) -> dict[str, str]:
    return STRINGS.get(lang, STRINGS["en"])
