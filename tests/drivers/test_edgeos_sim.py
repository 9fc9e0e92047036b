"""The EdgeOS simulator seen by a plain SSH client: wrapper sessions, EdgeOS's refusals,
persistent host key, and the ``jasiyo dev edgeos-sim`` command."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from jasiyo.drivers.edgeos import EdgeOSDriver
from jasiyo.drivers.edgeos.sim import EdgeOSSim
from jasiyo.drivers.routerstate import RouterConfig
from tests.drivers.test_edgeos import USERS, sim_config

W = "/opt/vyatta/sbin/vyatta-cfg-cmd-wrapper"


@pytest.fixture
def sim() -> Iterator[EdgeOSSim]:
    with EdgeOSSim(users=USERS) as s:
        yield s


@pytest.fixture
def ssh(sim: EdgeOSSim) -> Iterator[paramiko.SSHClient]:
    client = paramiko.SSHClient()
    client.get_host_keys().add(f"[127.0.0.1]:{sim.port}", sim.host_key.get_name(), sim.host_key)
    client.connect(
        "127.0.0.1", sim.port, "ubnt", USERS["ubnt"], look_for_keys=False, allow_agent=False, timeout=5
    )
    yield client
    client.close()


def run(ssh: paramiko.SSHClient, command: str, stdin: str | None = None) -> tuple[int, str]:
    i, o, _ = ssh.exec_command(command, timeout=10)
    if stdin is not None:
        i.write(stdin)
        i.channel.shutdown_write()
    o.channel.set_combine_stderr(True)
    text = o.read().decode()
    return o.channel.recv_exit_status(), text


def test_show_configuration_commands_direct_exec(ssh) -> None:
    status, text = run(ssh, "/opt/vyatta/bin/vyatta-op-cmd-wrapper show configuration commands")
    assert status == 0
    assert "set system host-name jasiyo-edgeos\n" in text


def test_invalid_path_is_refused_like_edgeos(sim, ssh) -> None:
    before = sim.state.show_commands()
    status, text = run(ssh, "vbash -s", f"{W} begin\n{W} set firewall bogus rule 1\n")
    assert status == 1
    assert "Configuration path: [firewall bogus] is not valid" in text and "Set failed" in text
    status, text = run(ssh, "vbash -s", f"{W} begin\n{W} set system host-name bad_name!\n")
    assert status == 1 and "Value validation failed" in text
    assert sim.state.show_commands() == before


def test_session_lives_for_one_shell_only(sim, ssh) -> None:
    status, _ = run(ssh, "vbash -s", f"{W} begin\n{W} set system host-name halfway\n")
    assert status == 0
    assert "host-name jasiyo-edgeos" in sim.state.show_commands()  # never committed
    status, text = run(ssh, "vbash -s", f"{W} set system host-name x\n")
    assert status == 1 and "not in a configuration session" in text
    status, _ = run(ssh, "vbash -s", f"{W} begin\n{W} set system host-name done\n{W} commit\n{W} end\n")
    assert status == 0 and "host-name done" in sim.state.show_commands()


def test_delete_of_missing_node_and_unknown_command(ssh) -> None:
    status, text = run(ssh, "vbash -s", f"{W} begin\n{W} delete service nat rule 77\n")
    assert status == 1 and "Nothing to delete" in text
    status, text = run(ssh, "rm -rf /config")
    assert status == 127 and "command not found" in text


def test_stop_on_first_failure_with_or_group(sim, ssh) -> None:
    script = (
        f"{W} begin || {{ echo FAILED 0; {W} end; exit 3; }}\n"
        f"{W} set service nat rule 1 type destination || {{ echo FAILED 1; {W} end; exit 3; }}\n"
        f"{W} set nope || {{ echo FAILED 2; {W} end; exit 3; }}\n"
        f"{W} commit || {{ echo FAILED 3; {W} end; exit 3; }}\n"
    )
    status, text = run(ssh, "vbash -s", script)
    assert status == 3 and "FAILED 2" in text and "FAILED 3" not in text
    assert "nat rule 1" not in sim.state.show_commands()


def test_host_key_survives_restart(tmp_path: Path) -> None:
    key_file = str(tmp_path / "hostkey")
    with EdgeOSSim(users=USERS, host_key_file=key_file) as first:
        fp = first.host_key_fingerprint
    with EdgeOSSim(users=USERS, host_key_file=key_file) as second:
        assert second.host_key_fingerprint == fp
        d = EdgeOSDriver(sim_config(second, fingerprint=fp))
        d.open()
        assert d.is_alive()
        d.close()


def test_dev_edgeos_sim_command(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jasiyo.cli",
            "dev",
            "edgeos-sim",
            "--port",
            "0",
            "--password",
            "pw",
            "--hostname",
            "cli-sim",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+), user 'ubnt', host key (SHA256:\S+);", line)
        assert m, line
        d = EdgeOSDriver(
            RouterConfig("127.0.0.1", "ubnt", "pw", port=int(m.group(1)), fingerprint=m.group(2), timeout=5)
        )
        d.open()
        assert d.identity() == "cli-sim"
        d.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
