"""Runs the web listener (``jasiyo.portal.app``) for the agent, in a thread of its own.

Its own thread and event loop keep slow HTTP clients off the loop that answers RADIUS, and
uvicorn away from the agent's signal handlers (it only installs its own on the main
thread). The socket is bound before the thread starts, so a port that cannot be bound is
known at once: logged loudly, and the agent carries on. RADIUS, billing and enforcement
matter more than the web pages and must not fail because of them.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.log import event, get_logger
from jasiyo.serving import ServerThread

log = get_logger(__name__)


class StoreBackend:
    """What the web listener asks of the agent (``jasiyo.portal.app.Backend``), over one
    store connection for the listener's thread pool: sqlite3 serialises its use and each
    call is one short transaction. Money-related writes commit with synchronous=FULL."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._store: Store | None = None
        self._token = ""
        self._portal: Any = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.cfg, synchronous="FULL")
        return self._store

    def healthy(self) -> bool:
        return self.store.scalar("SELECT 1") == 1

    def hook_token(self) -> str:
        from jasiyo.agent import charge

        if not self._token:
            self._token = charge.local_token(self.store)
        return self._token

    def keep_callback(self, endpoint: str, headers: dict[str, str], body: bytes, remote: str) -> None:
        from jasiyo.agent import collect, smsbox

        if endpoint in smsbox.LOCAL_PATHS:  # a delivery report or a reply: the SMS inbox
            smsbox.receive_local(self.store, endpoint, headers, body, remote)
        else:
            collect.receive_local(self.store, endpoint, headers, body, remote)

    def c2b_account_known(self, account: str) -> bool:
        from jasiyo.agent import collect

        return collect.match_account(self.store, account) is not None

    def portal(self) -> Any:
        """The customer's pages (``jasiyo.agent.portalbuy``), unless ``[portal] enabled``
        is false."""
        if not self.cfg.portal.enabled:
            return None
        if self._portal is None:
            from jasiyo.agent.portalbuy import PortalOps

            self._portal = PortalOps(lambda: self.store, self.cfg)
        return self._portal

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def portal_limits(cfg: Config) -> Any:
    """The portal's rate limits from ``[portal]``."""
    from jasiyo.portal.security import Limits

    p = cfg.portal
    return Limits(
        p.stk_per_phone,
        p.stk_per_mac,
        p.stk_per_ip,
        p.voucher_per_ip,
        p.voucher_per_mac,
        p.voucher_failures_per_minute,
        p.page_rate,
        p.page_burst,
    )


class WebServer:
    def __init__(self, cfg: Config, app: Any) -> None:
        self.cfg = cfg
        self.app = app
        self.port = cfg.web.port
        self._server: ServerThread | None = None

    def start(self) -> bool:
        """Bind and serve; False (logged) if the address cannot be bound."""
        address = self.cfg.web.address
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only when the
        # listening socket says TCP; without it Nagle and delayed ACKs add 40 ms per request.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, self.cfg.web.port))
        except OSError as exc:
            sock.close()
            event(
                log,
                "web.error",
                address=address,
                port=self.cfg.web.port,
                reason=f"cannot listen: {exc.strerror or exc}",
                level=logging.ERROR,
            )
            return False
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_keep_alive=5,
            limit_concurrency=512,
            timeout_graceful_shutdown=2,
            h11_max_incomplete_event_size=16 * 1024,
        )
        self._server = ServerThread(config, sock, "jasiyo-web")
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        if not self._server.start():
            event(
                log,
                "web.error",
                address=address,
                port=self.port,
                reason="did not start",
                level=logging.ERROR,
            )
            return False
        event(log, "web.start", address=address, port=self.port)
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        close: Callable[[], Any] | None = getattr(self.app.state, "close", None)
        if close:
            close()
        self._server = None
