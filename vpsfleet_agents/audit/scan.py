"""Running nmap against the configuration's targets only: addresses given by file (`-iL`, one
validated IPv4 address a line, never a network or a name), no DNS, a packet rate cap, service
detection at a bounded intensity and XML output."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vpsfleet_agents.audit import nmapxml
from vpsfleet_agents.audit.config import Config, Target


class ScanError(Exception):
    """nmap did not run to its end; nothing from it is reported as a finding."""


@dataclass(frozen=True)
class ScanResult:
    command: list[str]
    scan: nmapxml.Scan
    foreign: list[str]  # hosts in nmap's output that were not asked for (dropped)


def command(config: Config, targets_file: Path, xml_file: Path) -> list[str]:
    tcp, udp = config.port_specs("tcp"), config.port_specs("udp")
    ports = ",".join([f"T:{p}" for p in tcp] + [f"U:{p}" for p in udp])
    argv = [
        config.nmap,
        "-n",  # no DNS: nothing leaves for a resolver
        "-Pn",  # every target is a fleet machine: no discovery, no PING sweep
        "-sV",
        "--version-intensity",
        str(config.version_intensity),
        "--max-rate",
        str(config.max_rate),
        "--max-retries",
        "2",
        "--host-timeout",
        f"{config.host_timeout_minutes}m",
        "--reason",
        "-oX",
        str(xml_file),
    ]
    if tcp:
        argv.append("-sS")
    if udp:
        argv.append("-sU")
    argv += ["-p", ports, "-iL", str(targets_file)]
    return argv


def run(config: Config, targets: list[Target]) -> ScanResult:
    if not targets:
        raise ScanError("no target")
    wanted = {t.address for t in targets}
    with tempfile.TemporaryDirectory(prefix="vpsfleet-audit.") as tmp:
        targets_file, xml_file = Path(tmp) / "targets", Path(tmp) / "scan.xml"
        targets_file.write_text("".join(f"{t.address}\n" for t in targets), encoding="ascii")
        argv = command(config, targets_file, xml_file)
        budget = config.host_timeout_minutes * 60 * len(targets) + 300
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=budget,
                check=False,
                env={**os.environ, "LC_ALL": "C"},
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ScanError(f"nmap: {error}") from None
        if done.returncode != 0:
            raise ScanError(f"nmap exit {done.returncode}: {done.stderr.strip()[-500:]}")
        try:
            scan = nmapxml.parse(xml_file.read_bytes())
        except (OSError, nmapxml.NmapXmlError) as error:
            raise ScanError(f"nmap's XML: {error}") from None
    if not scan.finished:
        raise ScanError("nmap's XML has no successful end")
    foreign = [h.address for h in scan.hosts if h.address not in wanted]
    kept = nmapxml.Scan(scan.args, tuple(h for h in scan.hosts if h.address in wanted), scan.finished)
    return ScanResult(argv, kept, foreign)
