"""A QEMU guest that runs Debian's own PPPoE server and pppd, for the real-NAS test.

This machine's kernel has no PPP (no ``/dev/ppp``, no ``AF_PPPOX``). Debian's kernel
package has it as modules, so the guest boots that kernel (``linux-image-amd64``, fetched
and unpacked by ``scripts/bootstrap --dev`` into :data:`KERNEL_CACHE`) under QEMU's
software emulation (TCG: no KVM here), with a small initramfs made here: busybox
(``busybox-static``) loads the virtio, 9p, PPP, PPPoE, MPPE and veth modules, mounts the
host's root filesystem read-only over 9p and changes root into it, so the guest runs the
host's very binaries (``pppoe-server``, ``pppd`` and its ``radius.so``). A second, writable
9p share is the test's work directory, mounted at the same path inside the guest: the test
writes the scenario script and configuration there and reads back logs and results.

Networking is QEMU's user mode: the guest reaches the host's loopback as 10.0.2.2, so the
agent listens on 127.0.0.1 and sees the NAS's packets coming from 127.0.0.1. Inside the
guest the PPPoE clients live in network namespaces joined to the server by veth pairs.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

#: Where scripts/bootstrap --dev unpacks Debian's kernel package.
KERNEL_CACHE = Path(os.environ.get("JASIYO_NAS_KERNEL_DIR", "/var/cache/jasiyo-nas/kernel"))
BUSYBOX = Path("/bin/busybox")
QEMU = "qemu-system-x86_64"

#: The modules the guest needs (dependencies are added from each module's .modinfo).
MODULES = ("virtio_pci", "virtio_net", "9pnet_virtio", "9p", "pppoe", "ppp_async", "ppp_mppe", "veth")

#: The first stage: load modules, mount the host's root, hand over to the scenario script.
INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
for m in $(/bin/busybox cat /modules/order); do
    /bin/busybox insmod /modules/$m || echo "jasiyo-guest: insmod $m failed"
done
work=$(/bin/busybox sed -n 's/.*jasiyo.work=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro hostroot /newroot || {
    echo "jasiyo-guest: cannot mount the host root"; /bin/busybox poweroff -f; }
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 work /newroot$work || {
    echo "jasiyo-guest: cannot mount the work share at $work"; /bin/busybox poweroff -f; }
/bin/busybox mount --move /dev /newroot/dev
/bin/busybox umount /proc
echo "jasiyo-guest: stage 1 done, running $work/guest.sh"
exec /bin/busybox chroot /newroot /bin/sh -c "/bin/sh $work/guest.sh > $work/guest.log 2>&1; \
echo jasiyo-guest: scenario finished; echo o > /proc/sysrq-trigger; sleep 30"
"""


def kernel_files() -> tuple[Path, Path]:
    """(vmlinuz, modules directory) of the unpacked Debian kernel, or FileNotFoundError."""
    images = sorted(KERNEL_CACHE.glob("boot/vmlinuz-*"))
    if not images:
        raise FileNotFoundError(f"no Debian kernel unpacked in {KERNEL_CACHE}: run scripts/bootstrap --dev")
    version = images[-1].name.removeprefix("vmlinuz-")
    modules = KERNEL_CACHE / "lib" / "modules" / version
    if not modules.is_dir():
        raise FileNotFoundError(f"kernel modules {modules} missing: run scripts/bootstrap --dev")
    return images[-1], modules


def missing_tools() -> list[str]:
    """What the real-NAS test needs and this machine lacks (empty: ready)."""
    missing = [t for t in (QEMU, "pppd", "pppoe-server") if shutil.which(t) is None]
    if not BUSYBOX.exists():
        missing.append(str(BUSYBOX))
    if not Path("/usr/lib/pppd").is_dir() or not list(Path("/usr/lib/pppd").glob("*/radius.so")):
        missing.append("pppd radius.so")
    try:
        kernel_files()
    except FileNotFoundError as exc:
        missing.append(str(exc))
    return missing


def _module_index(root: Path) -> dict[str, Path]:
    return {p.name.removesuffix(".ko").replace("-", "_"): p for p in root.rglob("*.ko")}


def _depends(path: Path) -> list[str]:
    """The ``depends=`` of a module's .modinfo (NUL-separated key=value strings)."""
    data = path.read_bytes()
    at = data.find(b"\x00depends=")
    if at < 0:
        return []
    end = data.index(b"\x00", at + 1)
    text = data[at + len(b"\x00depends=") : end].decode()
    return [d.replace("-", "_") for d in text.split(",") if d]


def module_order(root: Path, wanted: Iterable[str]) -> list[Path]:
    """``wanted`` and their dependencies, each after what it depends on."""
    index = _module_index(root)
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        path = index.get(name)
        if path is None:
            return  # built into the kernel
        for dep in _depends(path):
            visit(dep)
        order.append(path)

    for name in wanted:
        visit(name)
    return order


def _cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (path, mode, data) entries (what the kernel unpacks)."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        raw = name.encode() + b"\x00"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + raw)
        out.write(b"\x00" * (-(110 + len(raw)) % 4))
        out.write(data)
        out.write(b"\x00" * (-len(data) % 4))
    return out.getvalue()


def build_initramfs(dest: Path) -> Path:
    """Write the gzipped initramfs to ``dest`` (busybox, the modules, /init)."""
    _, modules = kernel_files()
    order = module_order(modules, MODULES)
    entries: list[tuple[str, int, bytes]] = [
        ("bin", 0o040755, b""),
        ("modules", 0o040755, b""),
        ("bin/busybox", 0o100755, BUSYBOX.read_bytes()),
        ("init", 0o100755, INIT.encode()),
        ("modules/order", 0o100644, "".join(f"{p.name}\n" for p in order).encode()),
    ]
    entries += [(f"modules/{p.name}", 0o100644, p.read_bytes()) for p in order]
    dest.write_bytes(gzip.compress(_cpio(entries), compresslevel=1))
    return dest


class Guest:
    """One boot of the guest running ``work/guest.sh``; the console goes to
    ``work/console.log``. Use as a context manager; :meth:`wait` until it powers off."""

    def __init__(self, work: Path, *, memory_mb: int = 512) -> None:
        self.work = work.resolve()
        vmlinuz, _ = kernel_files()
        initrd = build_initramfs(self.work / "initramfs.gz")
        self.console = self.work / "console.log"
        cmdline = f"console=ttyS0 panic=-1 quiet loglevel=4 jasiyo.work={self.work}"
        self.argv = [
            QEMU,
            "-accel",
            "tcg",
            "-m",
            str(memory_mb),
            "-smp",
            "1",
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-kernel",
            str(vmlinuz),
            "-initrd",
            str(initrd),
            "-append",
            cmdline,
            "-serial",
            f"file:{self.console}",
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs",
            f"local,path={self.work},mount_tag=work,security_model=none,multidevs=remap",
            "-netdev",
            "user,id=n0,net=10.0.2.0/24",
            "-device",
            "virtio-net-pci,netdev=n0",
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def __enter__(self) -> Guest:
        self.started = time.monotonic()
        with (self.work / "qemu.log").open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def wait(self, timeout: float) -> int:
        """Wait for the guest to power off; return QEMU's exit status."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"guest still running after {timeout:.0f}s\n--- qemu\n"
                f"{(self.work / 'qemu.log').read_text(errors='replace')}"
                f"\n--- console\n{self.console_text()}"
                f"\n--- guest.log\n{self.guest_log()}"
            ) from None

    def console_text(self) -> str:
        return self.console.read_text(errors="replace") if self.console.exists() else ""

    def guest_log(self) -> str:
        log = self.work / "guest.log"
        return log.read_text(errors="replace") if log.exists() else ""
