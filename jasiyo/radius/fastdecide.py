"""What the PAP fast path decides, and the reply attributes it sends, for a RadiusServer.

:meth:`FastDecisions._fast_decide` is :meth:`RadiusServer._decide` for a plain PAP request,
with the encoded reply attributes. Most subscribers' answer depends on nothing but the
password (:func:`~jasiyo.radius.policy.fixed_decision`: no clock, no data used, no device
binding; a sessions limit only counts the open sessions): that answer and its encoded
attributes are kept per subscriber (by the identity of the backend's frozen
:class:`AuthSubject`, so a changed subscriber is a new entry), and such a request costs a
password comparison. The others go through :func:`~jasiyo.radius.policy.authorize` as on
the pyrad path; ``tests/radius/test_fastpap.py`` checks both paths answer byte for byte
alike, for every kind of subscriber.

A mixin: the server provides the backend, the guard, the encoder, the caches and the
backend-error handling.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jasiyo.radius import fastpap
from jasiyo.radius.backend import AuthSubject, NasClient, RadiusBackend, Usage
from jasiyo.radius.policy import AuthMethod, AuthRequest, Decision, authorize, fixed_decision, needs_usage

if TYPE_CHECKING:
    from jasiyo.radius.guard import GuessGuard
    from jasiyo.radius.replies import AttributeEncoder

#: (subject, NAS, its password encoded, the decision for the right password or None when
#: it is worked out per request, the reply's encoded attributes, the sessions limit under
#: which that decision holds or None)
Fixed = tuple[AuthSubject, NasClient, bytes, Decision | None, bytes | None, int | None]
GUARD_REJECT = Decision(False, reason="too many unknown usernames from this device")
_UNKNOWN_REJECT = Decision(False, reason="unknown user")
_WRONG_PAP = Decision(False, reason="wrong password (PAP)")


class FastDecisions:
    backend: RadiusBackend
    guard: GuessGuard
    encoder: AttributeEncoder
    _fixed: dict[int, Fixed]
    _fast_attrs: dict[tuple[Any, ...], bytes | None]
    _has_usage: bool

    # provided by the server (RadiusServer's methods)
    _lookup: Callable[[Any, Any], Any]
    _backend_failed: Callable[[Any, Exception], Exception]
    _usage_of: Callable[[AuthSubject], Usage]
    _log_unencodable: Callable[[str, Exception], None]

    def _fast_decide(self, request: fastpap.PapRequest, nas: NasClient) -> tuple[Decision, bytes | None]:
        """:meth:`_decide` for a PAP request, and the encoded reply attributes (None: pyrad
        must build the reply). A subscriber whose answer depends on nothing but the password
        (no clock, no usage, no device: :func:`policy.fixed_decision`) is answered from
        :attr:`_fixed`, filled on first use; the others go through :func:`authorize`."""
        username = request.username
        now = time.time()
        if self.guard.blocked_device(nas.address, request.calling_station_id, now):
            return GUARD_REJECT, fastpap.REJECT_ATTRS
        backend = self.backend
        subject = self._lookup(backend.subject, username)
        if subject is None:
            self.guard.unknown(self.guard.key(nas.address, request.calling_station_id), now)
            return _UNKNOWN_REJECT, fastpap.REJECT_ATTRS
        fixed = self._fixed.get(id(subject))
        if fixed is None or fixed[0] is not subject or fixed[1] is not nas:
            fixed = self._fix(subject, nas)
        usage = None
        if fixed[3] is not None:
            if not hmac.compare_digest(request.password.encode(), fixed[2]):
                return _WRONG_PAP, fastpap.REJECT_ATTRS
            limit = fixed[5]
            if limit is None:
                return fixed[3], fixed[4]
            try:
                usage = backend.usage(username, subject.state.data_since)
            except Exception as exc:
                raise self._backend_failed(self._usage_of, exc) from exc
            if len(usage.sessions) < limit:  # under the sessions limit: the fixed accept
                return fixed[3], fixed[4]
        elif self._has_usage and needs_usage(subject.state):
            usage = self._lookup(self._usage_of, subject)
        decision = authorize(
            AuthRequest(username, AuthMethod.PAP, pap_password=request.password,
                        calling_station_id=request.calling_station_id),
            subject, usage=usage, now=now, nas=nas,
        )  # fmt: skip
        return self._fast_attrs_of(decision, username)

    def _fast_attrs_of(self, decision: Decision, username: str) -> tuple[Decision, bytes | None]:
        """``decision`` (as unencodable attributes may change it) and its reply attributes."""
        if not decision.accept:
            message = decision.message
            return decision, (fastpap.reject_attrs(message) if message else fastpap.REJECT_ATTRS)
        attrs = self._fast_reply_attrs(decision, username)
        if attrs is fastpap.REJECT_ATTRS:  # did not encode: rejected (logged)
            return Decision(False, reason="reply attributes unencodable"), attrs
        return decision, attrs

    def _fix(self, subject: AuthSubject, nas: NasClient) -> Fixed:
        """The :attr:`_fixed` entry of ``subject`` at ``nas``: its decision and attributes
        for the right password, or None there if they must be worked out per request."""
        decision = fixed_decision(subject, nas)
        attrs: bytes | None = None
        if decision is not None:
            if decision.accept:
                with contextlib.suppress(ValueError, TypeError, KeyError):  # logged per request
                    attrs = fastpap.encode_attributes(self.encoder.attributes(decision.reply))
            else:
                attrs = fastpap.reject_attrs(decision.message) if decision.message else fastpap.REJECT_ATTRS
            if attrs is None:  # pyrad builds it, or it does not encode: the general path
                decision = None
        limit = subject.state.simultaneous_use
        if decision is None or not decision.accept or not self._has_usage:
            limit = None
        fixed = (subject, nas, subject.password.encode(), decision, attrs, limit)
        if len(self._fixed) >= 1_000_000:
            self._fixed.clear()
        self._fixed[id(subject)] = fixed
        return fixed

    def _fast_reply_attrs(self, decision: Decision, username: str) -> bytes | None:
        """The encoded attributes of an accept, cached per decision: None if pyrad must build
        the reply, :data:`fastpap.REJECT_ATTRS` if they do not encode (logged as on the pyrad
        path); ValueError where pyrad's encoder raises it (an internal error there too)."""
        attrs = decision.reply
        cache = self._fast_attrs
        cached = cache.get(attrs, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        try:
            encoded = self.encoder.attributes(attrs)
        except (ValueError, TypeError, KeyError) as exc:
            self._log_unencodable(username, exc)
            return fastpap.REJECT_ATTRS
        wire = fastpap.encode_attributes(encoded)
        if len(cache) >= 65536:
            cache.clear()
        cache[attrs] = wire
        return wire
