"""Daraja's wire formats: STK Password and Timestamp, result codes, callback bodies.

Pure functions, shared by :class:`~jasiyo.payments.mpesa.DarajaProvider` and the simulator,
so both sides agree byte for byte and the parsing is testable without sockets.

Callback bodies come from the internet and nobody signs them (Daraja documents no HMAC), so
parsing is strict: a size cap, JSON only, exact types, items read by ``Name`` (never by
position), amounts converted with :class:`~decimal.Decimal` (never through a float).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from jasiyo.payments.errors import CallbackError
from jasiyo.payments.models import Confirmation, Outcome, StatusAnswer

PROVIDER = "mpesa"
CURRENCY = "KES"
#: Daraja stamps and reads times in Kenyan local time (EAT, UTC+3, no daylight saving).
NAIROBI = ZoneInfo("Africa/Nairobi")
MAX_CALLBACK_BYTES = 64 * 1024  # a real callback is under 1 KiB

#: STK result code -> what it means for the payment.
RESULT_CODES: dict[str, Outcome] = {
    "0": Outcome.PAID,
    "1": Outcome.INSUFFICIENT_FUNDS,
    "17": Outcome.DUPLICATE,  # same amount to the same customer within 2 minutes
    "1001": Outcome.FAILED,  # unable to lock subscriber: another transaction in progress
    "1019": Outcome.TIMEOUT,  # the prompt expired before the customer answered
    "1025": Outcome.UNREACHABLE,  # push error: the prompt could not be shown
    "1032": Outcome.CANCELLED,
    "1037": Outcome.TIMEOUT,  # DS timeout: the phone could not be reached in time
    "2001": Outcome.WRONG_PIN,
    "2028": Outcome.FAILED,  # wrong TransactionType or PartyB for this shortcode
}

#: C2B validation rejection reasons -> Daraja's result codes.
C2B_REJECT_CODES: dict[str, str] = {
    "msisdn": "C2B00011",
    "account": "C2B00012",
    "amount": "C2B00013",
    "kyc": "C2B00014",
    "shortcode": "C2B00015",
    "other": "C2B00016",
}

_TIMESTAMP = re.compile(r"[0-9]{14}")
_AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")


def outcome_for(code: str) -> Outcome:
    return RESULT_CODES.get(code, Outcome.FAILED)


def timestamp(now: float) -> str:
    """Daraja's ``Timestamp`` for unix time ``now``: YYYYMMDDHHmmss, Nairobi local time."""
    return datetime.fromtimestamp(now, NAIROBI).strftime("%Y%m%d%H%M%S")


def password(shortcode: str, passkey: str, stamp: str) -> str:
    """The STK ``Password``: base64(shortcode + passkey + timestamp)."""
    return base64.b64encode(f"{shortcode}{passkey}{stamp}".encode()).decode("ascii")


def parse_timestamp(value: object) -> float:
    """A Daraja time (``20191219102115`` as number or string, Nairobi time) -> unix seconds."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise CallbackError(f"M-Pesa time must be YYYYMMDDHHmmss, got {type(value).__name__}", PROVIDER)
    text = str(value)
    if not _TIMESTAMP.fullmatch(text):
        raise CallbackError(f"M-Pesa time {text[:20]!r} is not YYYYMMDDHHmmss", PROVIDER)
    try:
        local = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
    except ValueError as exc:
        raise CallbackError(f"M-Pesa time {text!r} is not a real date", PROVIDER) from exc
    return local.timestamp()


def shillings_to_minor(value: object, field: str) -> int:
    """An M-Pesa amount (``"1500.00"``, ``1.0``, ``20``) -> cents, exactly, or CallbackError.

    Strings must look like a plain amount (no sign, exponent, spaces, NaN); numbers must be
    finite. At most two decimals: a third would be money we cannot represent."""
    if isinstance(value, bool):
        raise CallbackError(f"M-Pesa {field} must be an amount, got a boolean", PROVIDER)
    if isinstance(value, str):
        if not _AMOUNT.fullmatch(value):
            raise CallbackError(f"M-Pesa {field} {value[:20]!r} is not an amount", PROVIDER)
        dec = Decimal(value)
    elif isinstance(value, int | float):
        try:
            dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - repr of a float always parses
            raise CallbackError(f"M-Pesa {field} is not an amount", PROVIDER) from exc
        if not dec.is_finite():
            raise CallbackError(f"M-Pesa {field} is not a finite amount", PROVIDER)
    else:
        raise CallbackError(f"M-Pesa {field} must be an amount, got {type(value).__name__}", PROVIDER)
    minor = dec * 100
    if minor != minor.to_integral_value():
        raise CallbackError(f"M-Pesa {field} {value!r} has more than two decimals", PROVIDER)
    if minor <= 0:
        raise CallbackError(f"M-Pesa {field} {value!r} is not a positive amount", PROVIDER)
    if minor > 10**14:
        raise CallbackError(f"M-Pesa {field} {value!r} is implausibly large", PROVIDER)
    return int(minor)


def load_json(body: bytes) -> Any:
    """Decode a callback body: capped size, JSON only, bounded nesting."""
    if len(body) > MAX_CALLBACK_BYTES:
        raise CallbackError(
            f"M-Pesa callback of {len(body)} bytes is too large (limit {MAX_CALLBACK_BYTES})", PROVIDER
        )
    try:
        return json.loads(body)
    except RecursionError as exc:
        raise CallbackError("M-Pesa callback is nested too deeply", PROVIDER) from exc
    except ValueError as exc:
        raise CallbackError("M-Pesa callback is not JSON", PROVIDER) from exc


def _get(obj: object, key: str, types: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict):
        raise CallbackError(f"M-Pesa callback: {where} is not an object", PROVIDER)
    if key not in obj:
        raise CallbackError(f"M-Pesa callback: {where} has no {key}", PROVIDER)
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, types):
        raise CallbackError(
            f"M-Pesa callback: {where}.{key} has the wrong type ({type(value).__name__})", PROVIDER
        )
    return value


def _text(value: object, field: str, limit: int = 100) -> str:
    text = str(value)
    if not text or len(text) > limit or not text.isprintable():
        raise CallbackError(f"M-Pesa callback: {field} {text[:20]!r} is not a valid value", PROVIDER)
    return text


def parse_stk_callback(body: bytes, shortcode: str = "") -> StatusAnswer:
    """The ``{"Body":{"stkCallback":{...}}}`` Daraja posts to CallBackURL."""
    doc = load_json(body)
    cb = _get(_get(doc, "Body", dict, "body"), "stkCallback", dict, "Body")
    checkout = _text(_get(cb, "CheckoutRequestID", str, "stkCallback"), "CheckoutRequestID")
    # ResultCode is a number, except for a few gateway codes ("SFC_IC0003") sent as text.
    code = _text(_get(cb, "ResultCode", (int, str), "stkCallback"), "ResultCode", 20)
    desc = cb.get("ResultDesc")
    desc = desc[:200] if isinstance(desc, str) else ""
    outcome = outcome_for(code)
    if outcome is not Outcome.PAID:
        return StatusAnswer(PROVIDER, checkout, outcome, code, desc)
    meta = _get(cb, "CallbackMetadata", dict, "stkCallback")
    items = _get(meta, "Item", list, "CallbackMetadata")
    by_name: dict[str, object] = {}
    for item in items:
        name = _get(item, "Name", str, "CallbackMetadata.Item")
        if name in by_name:
            raise CallbackError(f"M-Pesa callback: item {name} appears twice", PROVIDER)
        by_name[name] = item.get("Value")  # Balance often has no Value at all
    for needed in ("Amount", "MpesaReceiptNumber"):
        if by_name.get(needed) is None:
            raise CallbackError(f"M-Pesa callback: a paid result has no {needed}", PROVIDER)
    amount = shillings_to_minor(by_name["Amount"], "Amount")
    receipt = by_name["MpesaReceiptNumber"]
    if not isinstance(receipt, str):
        raise CallbackError("M-Pesa callback: MpesaReceiptNumber is not text", PROVIDER)
    receipt = _text(receipt, "MpesaReceiptNumber", 40)
    phone = by_name.get("PhoneNumber")
    if phone is not None and (isinstance(phone, bool) or not isinstance(phone, int | str)):
        raise CallbackError("M-Pesa callback: PhoneNumber has the wrong type", PROVIDER)
    when = by_name.get("TransactionDate")
    paid_at = parse_timestamp(when) if when is not None else None
    conf = Confirmation(
        provider=PROVIDER,
        kind="stk",
        reference=receipt,
        amount_minor=amount,
        currency=CURRENCY,
        phone="" if phone is None else str(phone)[:20],
        request_id=checkout,
        shortcode=shortcode,
        paid_at=paid_at,
    )
    return StatusAnswer(PROVIDER, checkout, outcome, code, desc, conf)


def parse_c2b(body: bytes) -> Confirmation:
    """A C2B validation or confirmation body (paybill / till money nobody asked for)."""
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise CallbackError("M-Pesa C2B callback is not an object", PROVIDER)
    trans_id = _text(_get(doc, "TransID", str, "C2B"), "TransID", 40)
    amount = shillings_to_minor(_get(doc, "TransAmount", (str, int, float), "C2B"), "TransAmount")
    shortcode = _text(_get(doc, "BusinessShortCode", (str, int), "C2B"), "BusinessShortCode", 20)
    bill_ref = doc.get("BillRefNumber", "")
    if bill_ref is None:
        bill_ref = ""
    if not isinstance(bill_ref, str) or len(bill_ref) > 100 or not bill_ref.isprintable():
        raise CallbackError("M-Pesa C2B callback: BillRefNumber is not valid text", PROVIDER)
    msisdn = doc.get("MSISDN", "")
    if isinstance(msisdn, bool) or not isinstance(msisdn, str | int):
        raise CallbackError("M-Pesa C2B callback: MSISDN has the wrong type", PROVIDER)
    when = doc.get("TransTime")
    paid_at = parse_timestamp(when) if when not in (None, "") else None
    names = [doc.get(k) for k in ("FirstName", "MiddleName", "LastName")]
    payer = " ".join(n.strip() for n in names if isinstance(n, str) and n.strip())[:100]
    return Confirmation(
        provider=PROVIDER,
        kind="c2b",
        reference=trans_id,
        amount_minor=amount,
        currency=CURRENCY,
        account=bill_ref.strip(),
        phone=str(msisdn)[:64],
        shortcode=shortcode,
        paid_at=paid_at,
        payer_name=payer,
    )


# -- our answers to Daraja ------------------------------------------------------------------


def c2b_accept() -> dict[str, str]:
    """Answer to a C2B validation request: take the money."""
    return {"ResultCode": "0", "ResultDesc": "Accepted"}


def c2b_reject(reason: str = "other") -> dict[str, str]:
    """Answer to a C2B validation request: refuse it (``reason`` a key of C2B_REJECT_CODES)."""
    return {"ResultCode": C2B_REJECT_CODES.get(reason, "C2B00016"), "ResultDesc": "Rejected"}


def c2b_confirmation_ack() -> dict[str, object]:
    """Answer to a C2B confirmation (and to an STK callback): received."""
    return {"ResultCode": 0, "ResultDesc": "Success"}


def dumps(doc: Mapping[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()
