"""Runs the web listener (``jasiyo.portal.app``) inside the agent's event loop.

A port that cannot be bound is logged loudly and the agent carries on: RADIUS, billing and
enforcement matter more than the web pages, and must not fail because of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import uvicorn

from jasiyo.config import Config
from jasiyo.log import event, get_logger

log = get_logger(__name__)


class WebServer:
    def __init__(self, cfg: Config, app: Any) -> None:
        self.cfg = cfg
        self.app = app
        self.port = cfg.web.port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        config = uvicorn.Config(
            self.app, host=self.cfg.web.address, port=self.cfg.web.port, log_config=None,
            access_log=False, lifespan="off", timeout_keep_alive=5,
            limit_concurrency=512, h11_max_incomplete_event_size=16 * 1024,
        )
        server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        try:
            await server.startup()
        except (OSError, SystemExit) as exc:
            event(log, "web.error", address=self.cfg.web.address, port=self.cfg.web.port,
                  reason=f"cannot listen: {exc}", level=logging.ERROR)
            return False
        if server.should_exit:  # startup failed to bind (uvicorn logs and sets this)
            event(log, "web.error", address=self.cfg.web.address, port=self.cfg.web.port,
                  reason="cannot listen", level=logging.ERROR)
            return False
        for s in server.servers:
            for sock in s.sockets:
                self.port = sock.getsockname()[1]
        self._server = server
        self._task = asyncio.create_task(server.main_loop())
        event(log, "web.start", address=self.cfg.web.address, port=self.port)
        return True

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self._server.shutdown()
        close: Callable[[], Any] | None = getattr(self.app.state, "close", None)
        if close:
            close()
