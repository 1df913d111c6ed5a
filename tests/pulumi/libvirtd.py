"""A private libvirtd for tests: in its own network namespace, with its own state.

The daemon runs under `nsenter --net` (not `ip netns exec`, which remounts /sys and breaks
cgroups) and `unshare --mount`, which bind-mounts scratch folders over libvirt's config, state
and runtime folders: nothing it defines reaches this machine's libvirt, and a system libvirtd,
if any, is left alone. Tests reach it through its socket: qemu:///system?socket=...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.processes import stop

# What libvirt's qemu driver needs to start without libvirt-daemon-system's defaults: run guests
# as root, no cgroups (the sandbox's hybrid layout), qemu logs to files (no virtlogd).
QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
cgroup_controllers = [ ]
"""
LIBVIRTD_CONF = 'unix_sock_rw_perms = "0700"\n'
# libvirt folder -> scratch sub-folder bound over it inside the daemon's mount namespace
PRIVATE = {
    "/run/libvirt": "run",
    "/etc/libvirt": "etc",
    "/var/lib/libvirt": "lib",
    "/var/cache/libvirt": "cache",
    "/var/log/libvirt": "log",
}


@dataclass(frozen=True)
class Libvirtd:
    uri: str
    netns: str
    root: Path

    def nsenter(self) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}"]


def available() -> str | None:
    """Why the private libvirtd cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespace, bind mounts)"
    for tool in ("libvirtd", "nsenter", "unshare", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/debian-packages/40-libvirt.txt)"
    return None


@contextlib.contextmanager
def private_libvirtd(scratch: Path, name: str) -> Iterator[Libvirtd]:
    netns = f"vf-{name}-{os.getpid()}"[:15]
    for sub in PRIVATE.values():
        (scratch / sub).mkdir(parents=True, exist_ok=True)
    (scratch / "etc" / "qemu.conf").write_text(QEMU_CONF)
    (scratch / "etc" / "libvirtd.conf").write_text(LIBVIRTD_CONF)
    mounts = " && ".join(f"mkdir -p {target} && mount --bind {scratch / sub} {target}"
                         for target, sub in PRIVATE.items())
    subprocess.run(["ip", "netns", "add", netns], check=True)
    log = (scratch / "libvirtd.log").open("w")
    daemon = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{netns}", "unshare", "--mount", "--propagation",
         "private", "sh", "-c", f"{mounts} && exec libvirtd -p {scratch / 'libvirtd.pid'}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    socket = scratch / "run" / "libvirt-sock"
    uri = f"qemu:///system?socket={socket}"
    try:
        _wait_until_up(uri, daemon, scratch / "libvirtd.log")
        yield Libvirtd(uri=uri, netns=netns, root=scratch)
    finally:
        _destroy_domains(uri)  # libvirtd leaves running guests behind when it stops
        stop(daemon)
        log.close()
        subprocess.run(["ip", "netns", "del", netns], check=False)


def _wait_until_up(uri: str, daemon: subprocess.Popen[bytes], log: Path) -> None:
    import libvirt

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"libvirtd exited ({daemon.returncode}):\n{log.read_text()}")
        try:
            libvirt.open(uri).close()
            return
        except libvirt.libvirtError:
            time.sleep(0.2)
    raise RuntimeError(f"libvirtd did not answer on {uri} within 30 s:\n{log.read_text()}")


def _destroy_domains(uri: str) -> None:
    import libvirt

    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return
    try:
        for domain in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            domain.destroy()
    finally:
        conn.close()
