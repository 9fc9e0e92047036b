"""A simulated EdgeRouter reachable over real SSH (paramiko's server side).

    sim = EdgeOSSim(users={"ubnt": "secret"}, port=0)   # port 0: any free port
    sim.start()
    ... EdgeOSDriver(RouterConfig("127.0.0.1", "ubnt", "secret", port=sim.port,
                                  fingerprint=sim.host_key_fingerprint)) ...
    sim.state.show_commands()          # committed configuration, in process
    sim.state.hand_edit("delete ...")  # drift, as a person would make it
    sim.faults.fail_commits = 1        # fault injection (see SimFaults)
    sim.stop()

Each exec request runs a script in a :class:`~jasiyo.drivers.edgeos.simstate.Shell`:
either the command itself, or, for ``vbash -s`` / ``sh -s``, the script read from stdin
(how the driver sends a batch). Stdout and stderr share the channel; the exit status is
sent at the end. Password and public-key logins are accepted for the configured users.
The host key is kept in ``host_key_file`` when given (created on first start), so a
restarted simulator keeps its identity.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)

from jasiyo.drivers.edgeos.simstate import Cut, EdgeOSState, Shell, SimFaults
from jasiyo.log import event, get_logger

log = get_logger(__name__)
_STDIN_SHELLS = {"/bin/vbash -s", "vbash -s", "/bin/sh -s", "sh -s", "/bin/bash -s", "bash -s"}


def load_or_create_host_key(path: str | None) -> paramiko.PKey:
    """The key in ``path`` (created, mode 0600, if missing), or a fresh one when None."""
    if path and os.path.exists(path):
        return paramiko.ECDSAKey.from_private_key_file(path)
    key = paramiko.ECDSAKey.generate(bits=256)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            key.write_private_key(fh)
    return key


class _Server(paramiko.ServerInterface):
    def __init__(self, sim: EdgeOSSim) -> None:
        self.sim = sim
        self.commands: dict[int, str] = {}
        self.ready: dict[int, threading.Event] = {}

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password"

    def check_auth_password(self, username: str, password: str) -> int:
        with self.sim.faults.lock:
            self.sim.faults.auth_attempts += 1
        ok = username in self.sim.users and self.sim.users[username] == password
        return AUTH_SUCCESSFUL if ok else AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        with self.sim.faults.lock:
            self.sim.faults.auth_attempts += 1
        known = self.sim.authorized_keys.get(username, ())
        ok = any(k.get_fingerprint() == key.get_fingerprint() for k in known)
        return AUTH_SUCCESSFUL if ok else AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            self.ready[chanid] = threading.Event()
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        with self.sim.faults.lock:
            self.sim.faults.execs += 1
        self.commands[channel.get_id()] = command.decode("utf-8", "replace")
        self.ready.setdefault(channel.get_id(), threading.Event()).set()
        return True


class EdgeOSSim:
    """A threaded SSH server answering like an EdgeRouter's vbash and Vyatta wrappers."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str] | None = None,
        authorized_keys: Mapping[str, Sequence[paramiko.PKey]] | None = None,
        host_key: paramiko.PKey | None = None,
        host_key_file: str | None = None,
        state: EdgeOSState | None = None,
    ) -> None:
        self.host, self._port = host, port
        self.users = dict(users if users is not None else {"ubnt": "ubnt"})
        self.authorized_keys = {k: list(v) for k, v in (authorized_keys or {}).items()}
        self.host_key = host_key or load_or_create_host_key(host_key_file)
        self.state = state or EdgeOSState()
        self.faults = SimFaults()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._transports: list[paramiko.Transport] = []
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        """The listening port (the chosen one when started with port 0)."""
        return self._sock.getsockname()[1] if self._sock else self._port

    @property
    def host_key_fingerprint(self) -> str:
        """``SHA256:...`` of the host key, as ``ssh-keygen -lf`` prints it (pin this)."""
        return self.host_key.fingerprint

    def start(self) -> EdgeOSSim:
        """Listen and serve in background threads; returns self."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(16)
        sock.settimeout(0.2)
        self._sock = sock
        self._stopping.clear()
        self._spawn(self._accept_loop)
        event(log, "edgeos_sim.listening", host=self.host, port=self.port)
        return self

    def stop(self) -> None:
        """Stop listening, drop every connection, wait for the threads."""
        self._stopping.set()
        for t in list(self._transports):
            t.close()
        if self._sock:
            self._sock.close()
        for th in list(self._threads):
            th.join(timeout=5)
        self._threads.clear()
        self._transports.clear()

    def drop_connections(self) -> None:
        """Close every open SSH connection at once (the router rebooted)."""
        for t in list(self._transports):
            t.close()

    def __enter__(self) -> EdgeOSSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ serving

    def _spawn(self, target: Callable[..., object], *args: object) -> None:
        th = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(th)
        th.start()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        self._transports.append(transport)
        transport.add_server_key(self.host_key)
        server = _Server(self)
        try:
            transport.start_server(server=server)
        except (paramiko.SSHException, EOFError, OSError):
            transport.close()
            return
        while transport.is_active() and not self._stopping.is_set():
            chan = transport.accept(timeout=0.2)
            if chan is None:
                continue
            self._spawn(self._exec, transport, server, chan)
        transport.close()

    def _exec(self, transport: paramiko.Transport, server: _Server, chan: paramiko.Channel) -> None:
        ready = server.ready.setdefault(chan.get_id(), threading.Event())
        if not ready.wait(timeout=30):
            chan.close()
            return
        command = server.commands.pop(chan.get_id(), "").strip()
        chan.set_combine_stderr(True)

        def out(text: str) -> None:
            chan.sendall(text.encode())

        try:
            if command in _STDIN_SHELLS:
                script = _read_all(chan)
            else:
                # The client waits for the exec reply; let it arrive before output and close.
                self._stopping.wait(0.05)
                script = command
            status = Shell(self.state, self.faults, out).run(script)
            chan.send_exit_status(status)
            chan.shutdown_write()
            chan.close()
        except Cut:
            event(log, "edgeos_sim.cut", command=command[:40])
            transport.close()
        except (OSError, EOFError, paramiko.SSHException):
            transport.close()


def _read_all(chan: paramiko.Channel) -> str:
    chunks: list[bytes] = []
    while True:
        data = chan.recv(65536)
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")
