"""How the conformance suite looks at a RouterOS router: an inspector over any command path
(the simulator's in-process state, or a second API session to a lab router), and the
simulator's fault hooks."""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jasiyo.drivers.mikrotik.sim import RouterOSSim, _split
from jasiyo.network import Rate, Service
from tests.drivers.conformance import SubscriberOnRouter

Call = Callable[..., list[dict[str, str]]]
_OURS = re.compile(r"^jasiyo:(sub|plan|wg)=")
_MENUS = (
    "/ppp/secret",
    "/ppp/profile",
    "/ip/hotspot/user",
    "/ip/hotspot/user/profile",
    "/queue/simple",
    "/ip/firewall/address-list",
    "/ip/firewall/nat",
    "/ip/firewall/filter",
)


def sim_call(sim: RouterOSSim) -> Call:
    """Run commands straight on the simulator's state (no socket, not counted)."""

    def call(command: str, *words: str) -> list[dict[str, str]]:
        cmd, attrs, query, _ = _split([command, *words])
        rows, done = sim.state.execute(cmd, attrs, query)
        return rows + ([done] if done else [])

    return call


class MikrotikInspector:
    """RouterInspector for RouterOS, over ``call(command, *words) -> rows``."""

    def __init__(
        self, call: Call, address_list: str = "jasiyo-suspended", sim: RouterOSSim | None = None
    ) -> None:
        self.call = call
        self.alist = address_list
        self.sim = sim

    def _tagged(self, menu: str, username: str) -> list[dict[str, str]]:
        return self.call(f"{menu}/print", f"?comment=jasiyo:sub={username}")

    def subscriber(self, username: str) -> SubscriberOnRouter | None:
        queues = self._tagged("/queue/simple", username)
        listed = self._tagged("/ip/firewall/address-list", username)
        accounts = [(m, r) for m in ("/ppp/secret", "/ip/hotspot/user") for r in self._tagged(m, username)]
        if not (queues or listed or accounts):
            return None
        rate = None
        suspended = any(e.get("list") == self.alist for e in listed)
        if queues:
            rx, tx = queues[0]["max-limit"].split("/")
            rate = Rate(int(rx), int(tx))
        plan = None
        disabled = False
        if accounts:
            menu, acct = accounts[0]
            plan = acct.get("profile")
            disabled = acct.get("disabled") in ("true", "yes")
            pmenu = "/ppp/profile" if menu == "/ppp/secret" else "/ip/hotspot/user/profile"
            prof = self.call(f"{pmenu}/print", f"?name={plan}")
            if prof and prof[0].get("rate-limit"):
                rate = Rate.parse(prof[0]["rate-limit"].split()[0])
            suspended = suspended or bool(prof and prof[0].get("address-list") == self.alist)
        return SubscriberOnRouter(rate, suspended, disabled, plan)

    def hand_remove_rate(self, username: str) -> None:
        for q in self._tagged("/queue/simple", username):
            self.call("/queue/simple/remove", f"=.id={q['.id']}")

    def hand_unsuspend(self, username: str) -> None:
        for e in self._tagged("/ip/firewall/address-list", username):
            self.call("/ip/firewall/address-list/remove", f"=.id={e['.id']}")

    def add_unmanaged(self) -> None:
        c = self.call
        c(
            "/queue/simple/add",
            "=name=jt-hand-q",
            "=target=10.254.0.1",
            "=max-limit=1M/1M",
            "=comment=jt-hand queue",
        )
        c(
            "/queue/simple/add",
            "=name=jt-hand-q2",
            "=target=10.254.0.3",
            "=max-limit=2M/2M",
            "=comment=jasiyo:other=jt-hand",
        )  # our prefix, not our tag: still not ours
        c(
            "/ip/firewall/address-list/add",
            f"=list={self.alist}",
            "=address=10.254.0.2",
            "=comment=jt-hand paid cash, keep blocked",
        )
        c("/ppp/secret/add", "=name=jt-hand-user", "=password=x", "=comment=jt-hand")
        c(
            "/ip/firewall/filter/add",
            "=chain=forward",
            f"=src-address-list={self.alist}",
            "=action=log",
            "=comment=jt-hand log",
        )

    def unmanaged_snapshot(self) -> object:
        out = []
        for menu in _MENUS:
            for row in self.call(f"{menu}/print"):
                if not _OURS.match(row.get("comment", "")):
                    out.append((menu, tuple(sorted(row.items()))))
        return sorted(out)

    def add_session(self, service: Service, username: str, address: str) -> bool:
        if self.sim is None:
            return False
        self.sim.state.add_session(service.value, username, address)
        return True

    def cleanup(self) -> None:
        if self.sim is not None:
            return  # a fresh simulator per test
        for menu in _MENUS:
            for row in self.call(f"{menu}/print", "=.proplist=.id,comment"):
                if "jt-hand" in row.get("comment", ""):
                    self.call(f"{menu}/remove", f"=.id={row['.id']}")


class SimFaults:
    """FaultInjector over the simulator's hooks."""

    def __init__(self, sim: RouterOSSim) -> None:
        self.sim = sim

    def calls(self) -> int:
        return self.sim.stats.sentences

    def refuse_next_change(self, username: str) -> None:
        self.sim.faults.trap("/queue/simple/add", "failure: simulated refusal", match={"name": username})

    def cut_next_read(self) -> None:
        self.sim.faults.cut_mid_reply.add("/queue/simple/print")

    def cut_after(self, commands: int) -> None:
        self.sim.faults.cut_after = commands

    def clear(self) -> None:
        self.sim.faults.clear()


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (IP SAN), as a router's api-ssl would have."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jasiyo-sim")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "router.pem", directory / "router.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def fingerprint(cert_path: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":")
