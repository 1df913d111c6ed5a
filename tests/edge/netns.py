"""A datacenter edge in network namespaces (all named `edge-*`, made and removed by the tests):

    outside (198.18.0.2 and .3/24) ── router (ip_forward, the rendered nftables ruleset)
                                         ├── server (the dedicated server's fleet address, /26)
                                         └── management (192.0.2.1/30: inside a management network)

Commands run under `nsenter --net=/run/netns/NAME` (DESIGN.md: not `ip netns exec`). Nothing
leaves these namespaces: the outside is a namespace too.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PROBE = Path(__file__).with_name("probe.py")

OUTSIDE = "198.18.0.2"
OUTSIDE_OTHER = "198.18.0.3"  # a second outside source, for source-restricted edge rules
OUTSIDE_ROUTER = "198.18.0.1"
MANAGEMENT = "192.0.2.1"  # in the fleet's management network 192.0.2.0/30
MANAGEMENT_ROUTER = "192.0.2.2"


def usable() -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "nft", "nsenter"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def run(cmd: list[str], *, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, input=stdin)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


@dataclass
class Edge:
    outside: str
    router: str
    server: str
    management: str
    server_ip: str
    listeners: list[subprocess.Popen[str]] = field(default_factory=list)

    @staticmethod
    def enter(ns: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{ns}"]

    def ns(self, ns: str, *cmd: str, check: bool = True, stdin: str | None = None) -> str:
        return run([*self.enter(ns), *cmd], check=check, stdin=stdin)

    def load(self, ruleset: str) -> None:
        """What the role does: check the file, then load it (one transaction)."""
        self.ns(self.router, "nft", "-c", "-f", "-", stdin=ruleset)
        self.ns(self.router, "nft", "-f", "-", stdin=ruleset)

    def ruleset(self) -> str:
        return self.ns(self.router, "nft", "list", "ruleset")

    def listen(self, ns: str, *ports: int) -> None:
        proc = subprocess.Popen([*self.enter(ns), sys.executable, str(PROBE), "listen",
                                 *map(str, ports)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        self.listeners.append(proc)

    def probe(self, ns: str, *targets: str) -> dict[str, str]:
        out = self.ns(ns, sys.executable, str(PROBE), "connect", *targets)
        result: dict[str, str] = json.loads(out)
        return result


def _veth(a: str, a_if: str, b: str, b_if: str) -> None:
    run(["ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if,
         "netns", b])


@contextmanager
def edge(server_ip: str) -> Iterator[Edge]:
    """The four namespaces, wired and addressed; the router forwards with an empty ruleset."""
    tag = str(os.getpid() % 100000)
    names = {role: f"edge-{role}-{tag}" for role in ("out", "rtr", "srv", "mgmt")}
    server_net = ipaddress.IPv4Network(f"{server_ip}/26", strict=False)
    gateway = str(next(h for h in server_net.hosts() if str(h) != server_ip))
    made: list[str] = []
    e = Edge(names["out"], names["rtr"], names["srv"], names["mgmt"], server_ip)
    try:
        for name in names.values():
            run(["ip", "netns", "add", name])
            made.append(name)
            e.ns(name, "ip", "link", "set", "lo", "up")
        _veth(e.outside, "eth0", e.router, "out0")
        _veth(e.server, "eth0", e.router, "srv0")
        _veth(e.management, "eth0", e.router, "mgmt0")
        for ns, addrs, gw in (
            (e.outside, [f"{OUTSIDE}/24", f"{OUTSIDE_OTHER}/24"], OUTSIDE_ROUTER),
            (e.server, [f"{server_ip}/{server_net.prefixlen}"], gateway),
            (e.management, [f"{MANAGEMENT}/30"], MANAGEMENT_ROUTER),
        ):
            for addr in addrs:
                e.ns(ns, "ip", "addr", "add", addr, "dev", "eth0")
            e.ns(ns, "ip", "link", "set", "eth0", "up")
            e.ns(ns, "ip", "route", "add", "default", "via", gw)
        for ifname, addr in (("out0", f"{OUTSIDE_ROUTER}/24"),
                             ("srv0", f"{gateway}/{server_net.prefixlen}"),
                             ("mgmt0", f"{MANAGEMENT_ROUTER}/30")):
            e.ns(e.router, "ip", "addr", "add", addr, "dev", ifname)
            e.ns(e.router, "ip", "link", "set", ifname, "up")
        e.ns(e.router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        yield e
    finally:
        for proc in e.listeners:
            proc.kill()
            proc.wait()
        for name in made:
            run(["ip", "netns", "del", name], check=False)
