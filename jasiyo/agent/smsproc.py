"""The SMS sender in a process of its own (``[sms] process = true``, the default).

Draining the outbox fast is HTTP client work: rendering, JSON, TLS, one request per
message. In a thread of the agent's process it competes with authentication for the GIL and
for the cores (``bench/sms.py``: RADIUS p99 roughly doubled while 10,000 reminders drained).
Here it runs as a separate process (spawned, like the authentication workers) at nice 10, so
the kernel gives RADIUS the CPU first and the sender only what is left.

The child runs :meth:`jasiyo.agent.smswork.SmsWorker.run` over its own store connection;
everything it needs is in the store, so nothing is shared but the config. It stops on
SIGTERM (the agent's stop), or within a second when the agent's process is gone (the pipe
to it closes). A child that dies is started again after a pause that grows while it keeps
dying; a message it left ``sending`` is marked failed on the next start, never resent blindly.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from jasiyo.config import Config
from jasiyo.log import current_format, event, get_logger

log = get_logger(__name__)

_CTX = multiprocessing.get_context("spawn")  # no fork of a process with threads and sockets
#: How much less CPU priority the sender has than the agent (``nice``).
NICE = 10


def _child(cfg: Config, conn: Connection, log_level: str, log_format: str) -> None:
    from jasiyo import log as log_mod
    from jasiyo.agent.smswork import SmsWorker

    log_mod.setup(log_level, fmt=log_format)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the agent, which stops us
    with contextlib.suppress(OSError):
        os.nice(NICE)
    worker = SmsWorker(cfg)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop(timeout=0))

    def watch_parent() -> None:
        with contextlib.suppress(EOFError, OSError):
            conn.recv()  # nothing is ever sent: this returns when the agent is gone
        worker.stop(timeout=0)

    threading.Thread(target=watch_parent, name="jasiyo-sms-parent", daemon=True).start()
    event(
        log,
        "sms.start",
        provider=cfg.sms.provider,
        rate_per_minute=cfg.sms.rate_per_minute,
        process=os.getpid(),
        nice=NICE,
    )
    worker.run()


class SmsProcess:
    """The sender as a child process. Same use as ``SmsWorker``: ``start()``, ``stop()``."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.restarts = 0
        self._process: Any = None
        self._conn: Connection | None = None
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._spawned_at = 0.0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        from jasiyo.agent.smswork import why_not_sending

        why = why_not_sending(self.cfg)
        if why:
            event(log, "sms.disabled", reason=why)
            return
        self._spawn()
        self._monitor = threading.Thread(target=self._watch, name="jasiyo-sms-monitor", daemon=True)
        self._monitor.start()

    def _spawn(self) -> None:
        ours, theirs = _CTX.Pipe()
        proc = _CTX.Process(
            target=_child,
            name="jasiyo-sms",
            daemon=True,
            args=(self.cfg, theirs, self.cfg.agent.log_level, current_format()),
        )
        proc.start()
        theirs.close()
        self._spawned_at = time.monotonic()
        self._process, self._conn = proc, ours

    def _watch(self) -> None:
        pause = 1.0
        while not self._stopping.wait(0.5):
            proc = self._process
            if proc is None or proc.is_alive():
                continue
            lived = time.monotonic() - self._spawned_at
            event(log, "sms.process_died", logging.ERROR, exitcode=proc.exitcode, wait=pause)
            if self._stopping.wait(pause):
                return
            self.restarts += 1
            self._spawn()
            # A child that lived a while resets the pause; one that keeps dying waits longer.
            pause = 1.0 if lived > 60 else min(pause * 2, 60.0)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join(timeout)
        proc = self._process
        if proc is not None and proc.is_alive():
            proc.terminate()
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None


__all__ = ["NICE", "SmsProcess"]
