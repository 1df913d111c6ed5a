"""A tiny lab for the audit, in network namespaces this test creates (names `m29-*`): a monitor
namespace wired by veth pairs to two guest namespaces, with documentation addresses. Nothing
leaves them: the namespaces have no route but their own links."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# (guest, monitor side, guest side) on /30 links of TEST-NET-1.
LINKS = {"g1": ("192.0.2.1", "192.0.2.2"), "g2": ("192.0.2.5", "192.0.2.6")}


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def missing_tools() -> list[str]:
    return [
        t
        for t in ("ip", "nmap", "tinyproxy", "ngircd", "nsenter")
        if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()
    ]


@dataclass
class NetLab:
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"m29-{self.tag}-{role}"

    def exec_argv(self, role: str, *argv: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.ns(role)}", "--", *argv]

    def up(self) -> None:
        for role in ("mon", *LINKS):
            run("ip", "netns", "add", self.ns(role))
            run("ip", "-n", self.ns(role), "link", "set", "lo", "up")
        for guest, (mon_ip, guest_ip) in LINKS.items():
            a, b = f"m29{self.tag}{guest}m", f"m29{self.tag}{guest}g"
            run(
                "ip",
                "link",
                "add",
                a,
                "netns",
                self.ns("mon"),
                "type",
                "veth",
                "peer",
                "name",
                b,
                "netns",
                self.ns(guest),
            )
            run("ip", "-n", self.ns("mon"), "addr", "add", f"{mon_ip}/30", "dev", a)
            run("ip", "-n", self.ns(guest), "addr", "add", f"{guest_ip}/30", "dev", b)
            run("ip", "-n", self.ns("mon"), "link", "set", a, "up")
            run("ip", "-n", self.ns(guest), "link", "set", b, "up")
            # The guest's way back to the canary (the monitor's address on the other link too).
            run("ip", "-n", self.ns(guest), "route", "add", "default", "via", mon_ip)
            # Closed UDP ports answer at once (the kernel's ICMP rate limit would make nmap wait).
            run(*self.exec_argv(guest, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"))

    def start(self, role: str, *argv: str, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            self.exec_argv(role, *argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def listening(self, role: str, port: int) -> bool:
        out = run(*self.exec_argv(role, "ss", "-Hltn", f"sport = :{port}"))
        return bool(out.strip())

    def wait_listening(self, role: str, ports: list[int], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not all(self.listening(role, p) for p in ports):
            assert time.monotonic() < deadline, f"{role}: ports {ports} not all listening"
            time.sleep(0.2)

    def down(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for role in ("mon", *LINKS):
            subprocess.run(["ip", "netns", "delete", self.ns(role)], check=False, capture_output=True)


def is_root() -> bool:
    return os.geteuid() == 0
