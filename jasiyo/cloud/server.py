"""Running the cloud app: in the foreground (``jasiyo cloud serve``) or in a thread.

:class:`ThreadedServer` runs uvicorn on a real socket (127.0.0.1, an ephemeral port by
default) in a background thread; tests, benchmarks and demos use it so the sync client
talks real HTTP to the same code that runs in production.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from typing import Any

import uvicorn

from jasiyo import log as log_mod
from jasiyo.cloud.app import CloudSettings, create_app, redact_path, token_hash
from jasiyo.cloud.guard import ACCEPT_BATCH, Guard, guarded_protocol, listening_socket
from jasiyo.cloud.metrics import CloudMetrics, instrument
from jasiyo.cloud.storage import Storage
from jasiyo.errors import CloudError
from jasiyo.log import event, get_logger
from jasiyo.serving import ServerThread
from jasiyo.sync.ids import uuid7

log = get_logger(__name__)

OPERATOR_ENV = "JASIYO_OPERATOR_TOKEN"


def new_operator_token() -> str:
    return "jop_" + secrets.token_urlsafe(32)


def ensure_operator(storage: Storage, token: str) -> bool:
    """Make ``token`` an operator token (stored hashed). True if it was new."""
    if len(token) < 24:
        raise CloudError("an operator token must be at least 24 characters of randomness")
    if storage.is_operator(token_hash(token)):
        return False
    try:
        return storage.add_operator(uuid7(), token_hash(token), time.time())
    except CloudError as exc:
        if "privilege" not in str(exc):
            raise
        # PostgreSQL: the service role may not create operators (migration c003).
        raise CloudError(
            "the service role may not create operator tokens; register this one as the "
            "tables' owner: JASIYO_OPERATOR_TOKEN=... jasiyo cloud create-operator --from-env "
            "--db OWNER_URL"
        ) from None


class RedactHookTokens(logging.Filter):
    """Mask the webhook token in uvicorn's access lines (``/v1/hooks/<tenant>/<token>``).

    The token is the only secret a provider's callback carries: whoever reads it can post
    forged callbacks (the agent verifies them, but they would still fill the log).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_path(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact_path(record.msg)
        return True


def _guard(settings: CloudSettings | None) -> Guard:
    cfg = settings or CloudSettings()
    return Guard(
        per_client=cfg.max_conns_per_client,
        max_connections=cfg.max_connections,
        header_timeout=cfg.header_timeout,
        body_timeout=cfg.body_timeout,
    )


def _uvicorn_config(app: Any, guard: Guard, storage: Storage, **kw: Any) -> uvicorn.Config:
    app = instrument(app, CloudMetrics(storage, guard))  # GET /metrics (jasiyo.cloud.metrics)
    config = uvicorn.Config(
        app,
        ws="none",
        lifespan="on",
        http=guarded_protocol(guard),
        log_level=kw.pop("log_level", "warning"),
        timeout_keep_alive=5,
        # asyncio accepts up to `backlog` sockets per wake-up before any is
        # refused: uvicorn's 2048 would overrun the descriptor reserve.
        backlog=ACCEPT_BATCH,
        timeout_graceful_shutdown=2,
        **kw,
    )
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactHookTokens) for f in access.filters):
        access.addFilter(RedactHookTokens())
    return config


def serve(
    storage: Storage,
    host: str,
    port: int,
    settings: CloudSettings | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve until interrupted. Bootstraps the operator token from $JASIYO_OPERATOR_TOKEN.

    With ``tls_cert``/``tls_key`` (PEM files) it serves HTTPS itself; otherwise put it behind
    a TLS-terminating proxy: agents refuse plain http:// to anything but loopback.
    """
    # The cloud's own lines (cloud.refused, cloud.error, cloud.agent_revoked, ...) go to
    # stderr beside uvicorn's; without this they had no handler and were lost.
    log_mod.setup(log_level)
    token = os.environ.get(OPERATOR_ENV)
    if token:
        ensure_operator(storage, token)
    guard = _guard(settings)
    sock = listening_socket(host, port, guard)
    app = create_app(storage, settings)
    tls = {"ssl_certfile": tls_cert, "ssl_keyfile": tls_key} if tls_cert else {}
    server = uvicorn.Server(_uvicorn_config(app, guard, storage, log_level=log_level, **tls))
    event(log, "cloud.listening", address=host, port=sock.getsockname()[1], tls=bool(tls_cert))
    server.run(sockets=[sock])


class ThreadedServer:
    """The cloud on a real socket in a thread. ``start()``/``stop()`` may repeat (same port)."""

    def __init__(
        self, storage: Storage, settings: CloudSettings | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.host = host
        self.port = port
        self._server: ServerThread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ThreadedServer:
        guard = _guard(self.settings)
        sock = listening_socket(self.host, self.port, guard)
        self.port = sock.getsockname()[1]
        app = create_app(self.storage, self.settings)
        self._server = ServerThread(_uvicorn_config(app, guard, self.storage), sock, "jasiyo-cloud")
        if not self._server.start():
            raise CloudError("the cloud server did not start")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
