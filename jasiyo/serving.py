"""A uvicorn server in a thread of its own, on a socket the caller bound: the agent's web
listener, the cloud in tests and benches, and the shipped simulators all run this way."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn


class ServerThread:
    """``uvicorn.Server(config)`` served on ``sock`` in a daemon thread named ``name``."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, name: str) -> None:
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name=name, daemon=True
        )

    def start(self, timeout: float = 10.0) -> bool:
        """Start and wait until it serves; False if it died or did not start in time."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
