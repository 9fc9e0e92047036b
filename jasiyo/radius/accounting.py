"""Accounting-Request decoding and the group-commit writer.

Durable before acknowledged: an Accounting-Response tells the NAS it may forget the
record, so it is sent only after the backend has committed it. One writer thread takes
everything queued, stores it in one ``record_accounting`` call (one transaction), then
hands exactly that batch back to the event loop to be answered. If the write fails, the
batch gets no answer and the NAS retransmits.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from socket import inet_ntoa
from typing import Any

from pyrad.packet import AcctPacket

from jasiyo.errors import ValidationError
from jasiyo.log import event, get_logger
from jasiyo.radius.backend import AcctRecord, RadiusBackend
from jasiyo.radius.metrics import Buckets

log = get_logger(__name__)

#: Acct-Status-Type values we store, by number (RFC 2866 section 5.1).
STATUS_TYPES: dict[int, str] = {
    1: "Start",
    2: "Stop",
    3: "Interim-Update",
    7: "Accounting-On",
    8: "Accounting-Off",
}

_TERMINATE_CAUSES: dict[int, str] = {
    1: "User-Request", 2: "Lost-Carrier", 3: "Lost-Service", 4: "Idle-Timeout",
    5: "Session-Timeout", 6: "Admin-Reset", 7: "Admin-Reboot", 8: "Port-Error",
    9: "NAS-Error", 10: "NAS-Request", 11: "NAS-Reboot", 12: "Port-Unneeded",
    13: "Port-Preempted", 14: "Port-Suspended", 15: "Service-Unavailable", 16: "Callback",
    17: "User-Error", 18: "Host-Request",
}  # fmt: skip


class UnsupportedStatus(Exception):
    """An Acct-Status-Type we acknowledge but do not store (e.g. Tunnel-Start, Failed)."""


def _int(attrs: Mapping[int, bytes], key: int) -> int:
    raw = attrs.get(key)
    if raw is None:
        return 0
    if len(raw) != 4:
        raise ValueError(f"attribute {key} must be a 4-byte integer, got {len(raw)} bytes")
    return int.from_bytes(raw, "big")


def _str(attrs: Mapping[int, bytes], key: int) -> str:
    raw = attrs.get(key)
    return raw.decode("utf-8", "replace") if raw else ""


#: Between a generic NAS's Acct-Session-Id and the NAS-Port the agent keys its session by.
PORT_MARK = "@port"


def nas_session_id(stored: str) -> str:
    """The Acct-Session-Id as the NAS sent it, from the one the agent stored."""
    head, mark, port = stored.rpartition(PORT_MARK)
    return head if mark and port.isdigit() else stored


def decode_record(
    pkt: AcctPacket, nas_address: str, received_at: float, *, key_by_port: bool = False
) -> AcctRecord:
    """The :class:`AcctRecord` of a verified Accounting-Request decoded by pyrad."""
    # dict.items bypasses pyrad's name handling: raw bytes, no decoding surprises
    first = {k: v[0] for k, v in dict.items(pkt) if type(k) is int and v}
    return decode_attrs(first, nas_address, received_at, key_by_port=key_by_port)


def decode_attrs(
    attrs: Mapping[int, bytes], nas_address: str, received_at: float, *, key_by_port: bool = False
) -> AcctRecord:
    """The :class:`AcctRecord` of a verified Accounting-Request, from the first value of
    each of its attributes by number.

    Octet counters combine Acct-*-Octets with Acct-*-Gigawords (RFC 2869: count of 2**32
    wraps). Raises ValueError for a request without Acct-Status-Type or with an attribute
    of the wrong size, and :class:`UnsupportedStatus` for status types we do not store.

    ``key_by_port`` (a generic NAS): the session id gets the NAS-Port appended
    (``<id>@port<n>``), because some NASes do not make Acct-Session-Id unique: pppd 2.4.9's
    radius plugin sends the same one for two sessions that start in the same second.
    A NAS-Port-Id absent, the NAS-Port stands in for it.
    """
    if attrs.get(40) is None:
        raise ValueError("Accounting-Request without Acct-Status-Type")
    status_code = _int(attrs, 40)
    status = STATUS_TYPES.get(status_code)
    if status is None:
        raise UnsupportedStatus(f"Acct-Status-Type {status_code}")
    framed = attrs.get(8)
    if framed is not None and len(framed) != 4:
        raise ValueError("Framed-IP-Address must be 4 bytes")
    cause = _int(attrs, 49)
    session_id = _str(attrs, 44)
    port_id = _str(attrs, 87)
    if key_by_port and attrs.get(5) is not None:
        port = _int(attrs, 5)
        if session_id:
            session_id = f"{session_id}{PORT_MARK}{port}"
        port_id = port_id or str(port)
    return AcctRecord(
        nas_address=nas_address,
        status_type=status,
        received_at=received_at,
        acct_session_id=session_id,
        username=_str(attrs, 1),
        nas_identifier=_str(attrs, 32),
        nas_port_id=port_id,
        framed_ip=inet_ntoa(framed) if framed else "",
        calling_station_id=_str(attrs, 31),
        session_time=_int(attrs, 46),
        input_octets=(_int(attrs, 52) << 32) | _int(attrs, 42),
        output_octets=(_int(attrs, 53) << 32) | _int(attrs, 43),
        input_packets=_int(attrs, 47),
        output_packets=_int(attrs, 48),
        terminate_cause=_TERMINATE_CAUSES.get(cause, str(cause)) if cause else "",
        delay_time=_int(attrs, 41),
    )


@dataclass(slots=True)
class PendingAcct:
    """A decoded request waiting for its batch to commit; ``context`` is the wire layer's."""

    record: AcctRecord
    context: Any


class GroupCommitWriter:
    """A thread that stores queued accounting records in batches.

    ``on_committed(batch)`` or ``on_failed(batch, exc)`` is called in the event loop after
    each ``record_accounting`` call, for exactly the items of that call.
    """

    _STOP = object()

    def __init__(
        self,
        backend: RadiusBackend,
        loop: asyncio.AbstractEventLoop,
        on_committed: Callable[[Sequence[PendingAcct]], None],
        on_failed: Callable[[Sequence[PendingAcct], BaseException], None],
        max_batch: int = 2048,
    ) -> None:
        self._backend = backend
        self._loop = loop
        self._on_committed = on_committed
        self._on_failed = on_failed
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="radius-acct-writer", daemon=True)
        self.last_batch_size = 0
        self.commit_latency = Buckets()  # written by the writer thread only

    def queue_depth(self) -> int:
        """Records received and not yet handed to the store."""
        return self._queue.qsize()

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: PendingAcct) -> None:
        """Queue one record; never blocks the event loop."""
        self._queue.put(item)

    async def stop(self) -> None:
        """Store what is queued, then end the thread."""
        if not self._thread.is_alive():
            return
        self._queue.put(self._STOP)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is self._STOP:
                return
            batch: list[PendingAcct] = [first]  # type: ignore[list-item]
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is self._STOP:
                    stopping = True
                    break
                batch.append(nxt)  # type: ignore[arg-type]
            self._write(batch)

    def _write(self, batch: list[PendingAcct]) -> None:
        started = time.perf_counter()
        try:
            self._backend.record_accounting([p.record for p in batch])
        except ValidationError as exc:
            if len(batch) == 1:
                self._failed(batch, exc)
            else:  # one record the store refuses (a counter too large): store the others
                self._write_each(batch)
            return
        except Exception as exc:  # noqa: BLE001 - the backend's failure, whatever it is: answer nothing
            event(
                log, "radius.acct_write_failed", logging.ERROR,
                records=len(batch), error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
            self._call_loop(self._on_failed, batch, exc)
            return
        self._committed(batch, started)

    def _write_each(self, batch: list[PendingAcct]) -> None:
        """Each record of a refused batch in its own transaction: those the store takes are
        answered, the others are not (and logged)."""
        for item in batch:
            started = time.perf_counter()
            try:
                self._backend.record_accounting([item.record])
            except Exception as exc:  # noqa: BLE001 - as in _write: answer nothing
                self._failed([item], exc)
            else:
                self._committed([item], started)

    def _failed(self, batch: list[PendingAcct], exc: BaseException) -> None:
        r = batch[0].record
        event(
            log, "radius.acct_write_failed", logging.ERROR, records=len(batch),
            nas=r.nas_address, session=r.acct_session_id, error=f"{type(exc).__name__}: {exc}",
        )  # fmt: skip
        self._call_loop(self._on_failed, batch, exc)

    def _committed(self, batch: list[PendingAcct], started: float) -> None:
        self.last_batch_size = len(batch)
        self.commit_latency.observe(time.perf_counter() - started)
        event(
            log, "radius.acct_committed", logging.DEBUG,
            records=len(batch), ms=round((time.perf_counter() - started) * 1000, 2),
        )  # fmt: skip
        self._call_loop(self._on_committed, batch)

    def _call_loop(self, fn: Callable[..., None], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            # the loop is closed (shutdown): records are stored, the NAS will retransmit
            # and the backend's idempotency makes that harmless
            pass
