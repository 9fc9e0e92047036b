"""Configuration for the guest's NAS: pppoe-server spawning pppd with radius.so.

:func:`prepare` writes into the work directory everything :file:`scenario.sh` reads: the
radiusclient configuration pointing at the agent (10.0.2.2 is the host's loopback through
QEMU user networking), the servers' pppd options (one for any method, one requiring
MPPE-128), the client list, and the guest's ``guest.sh``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGENT_FROM_GUEST = "10.0.2.2"

#: The attributes radius.so sends or reads, in the radiusclient dictionary format
#: ("ATTRIBUTE name number type [vendor]"); an attribute it sends must be listed.
DICTIONARY = """\
ATTRIBUTE User-Name 1 string
ATTRIBUTE Password 2 string
ATTRIBUTE CHAP-Password 3 string
ATTRIBUTE NAS-IP-Address 4 ipaddr
ATTRIBUTE NAS-Port-Id 5 integer
ATTRIBUTE Service-Type 6 integer
ATTRIBUTE Framed-Protocol 7 integer
ATTRIBUTE Framed-IP-Address 8 ipaddr
ATTRIBUTE Framed-IP-Netmask 9 ipaddr
ATTRIBUTE Filter-Id 11 string
ATTRIBUTE Framed-MTU 12 integer
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE Framed-Route 22 string
ATTRIBUTE State 24 string
ATTRIBUTE Class 25 string
ATTRIBUTE Session-Timeout 27 integer
ATTRIBUTE Idle-Timeout 28 integer
ATTRIBUTE Called-Station-Id 30 string
ATTRIBUTE Calling-Station-Id 31 string
ATTRIBUTE NAS-Identifier 32 string
ATTRIBUTE Acct-Status-Type 40 integer
ATTRIBUTE Acct-Delay-Time 41 integer
ATTRIBUTE Acct-Input-Octets 42 integer
ATTRIBUTE Acct-Output-Octets 43 integer
ATTRIBUTE Acct-Session-Id 44 string
ATTRIBUTE Acct-Authentic 45 integer
ATTRIBUTE Acct-Session-Time 46 integer
ATTRIBUTE Acct-Input-Packets 47 integer
ATTRIBUTE Acct-Output-Packets 48 integer
ATTRIBUTE Acct-Terminate-Cause 49 integer
ATTRIBUTE Acct-Input-Gigawords 52 integer
ATTRIBUTE Acct-Output-Gigawords 53 integer
ATTRIBUTE Chap-Challenge 60 string
ATTRIBUTE NAS-Port-Type 61 integer
ATTRIBUTE Port-Limit 62 integer
ATTRIBUTE Connect-Info 77 string
ATTRIBUTE Message-Authenticator 80 string
ATTRIBUTE Acct-Interim-Interval 85 integer
ATTRIBUTE Framed-Pool 88 string
VENDOR Microsoft 311
ATTRIBUTE MS-CHAP-Response 1 string Microsoft
ATTRIBUTE MS-CHAP-Error 2 string Microsoft
ATTRIBUTE MS-MPPE-Encryption-Policy 7 string Microsoft
ATTRIBUTE MS-MPPE-Encryption-Types 8 string Microsoft
ATTRIBUTE MS-CHAP-Domain 10 string Microsoft
ATTRIBUTE MS-CHAP-Challenge 11 string Microsoft
ATTRIBUTE MS-CHAP-MPPE-Keys 12 string Microsoft
ATTRIBUTE MS-MPPE-Send-Key 16 string Microsoft
ATTRIBUTE MS-MPPE-Recv-Key 17 string Microsoft
ATTRIBUTE MS-CHAP2-Response 25 string Microsoft
ATTRIBUTE MS-CHAP2-Success 26 string Microsoft
VALUE Service-Type Framed-User 2
VALUE Framed-Protocol PPP 1
VALUE Acct-Status-Type Start 1
VALUE Acct-Status-Type Stop 2
VALUE Acct-Status-Type Interim-Update 3
"""


@dataclass(frozen=True, slots=True)
class Client:
    """One PPPoE customer in the guest: pppd on ``ppp<unit>`` authenticating by ``method``
    (``pap``, ``chap``, ``mschapv2``, or ``mppe`` = MS-CHAPv2 with MPPE-128 required)."""

    user: str
    password: str
    method: str
    unit: int


def prepare(work: Path, *, auth_port: int, acct_port: int, secret: str, clients: list[Client]) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / "radius-dictionary").write_text(DICTIONARY)
    (work / "radius-servers").write_text(f"{AGENT_FROM_GUEST} {secret}\n")
    (work / "port-id-map").write_text("")
    (work / "radius.seq").write_text("1\n")
    (work / "radiusclient.conf").write_text(f"""\
auth_order radius
login_tries 4
login_timeout 60
nologin /etc/nologin
issue /etc/issue
authserver {AGENT_FROM_GUEST}:{auth_port}
acctserver {AGENT_FROM_GUEST}:{acct_port}
servers {work}/radius-servers
dictionary {work}/radius-dictionary
login_radius /usr/sbin/login.radius
seqfile {work}/radius.seq
mapfile {work}/port-id-map
radius_timeout 5
radius_retries 3
""")
    server = f"""\
plugin radius.so
radius-config-file {work}/radiusclient.conf
auth
nodefaultroute
lcp-echo-interval 0
debug
logfile {work}/pppd-server.log
"""
    (work / "server.options").write_text(server)
    (work / "server-mppe.options").write_text(server + "require-mppe-128\n")
    (work / "clients.txt").write_text(
        "".join(f"{c.user} {c.unit} {c.method} {c.password}\n" for c in clients)
    )
    shutil.copyfile(HERE / "scenario.sh", work / "guest.sh")
