"""The audit lab: a monitor namespace and two guests. Guest g1 runs a real open proxy
(Debian's tinyproxy with no Allow line), a real IRC server (Debian's ngircd) and a fake IRC
server with a hostile greeting; guest g2 runs only a web site (Python's http.server) on 8080, a
port of the proxy list. The audit program runs in the monitor namespace, as the zip application
role monitor installs."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.audit.netlab import LINKS, NetLab, is_root, missing_tools
from vpsfleet.agent_build import Artifact, build_bytes

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ROLE_DEFAULTS = ROOT / "ansible/roles/monitor/defaults/main.yml"
ARTIFACT = Artifact("vpsfleet-audit", "vpsfleet_agents.audit.cli:main", "ansible/roles/monitor/files")

TINYPROXY = """User nobody
Group nogroup
Port 3128
Listen {address}
Timeout 30
MaxClients 20
LogLevel Error
PidFile "{tmp}/tinyproxy.pid"
"""

NGIRCD = """[Global]
Name = irc.m29.test
Info = the audit's planted IRC server
Listen = {address}
Ports = 6667
ServerUID = nobody
ServerGID = nogroup
PidFile = {tmp}/ngircd.pid
MotdPhrase = planted by tests/audit
[Options]
DNS = no
Ident = no
PAM = no
"""


def role_ports() -> dict[str, Any]:
    defaults = yaml.safe_load(ROLE_DEFAULTS.read_text())
    ports: dict[str, Any] = defaults["monitor_audit_default_ports"]
    return ports


@dataclass
class AuditLab:
    net: NetLab
    tmp: Path
    program: Path
    nmap_log: Path

    def config(self, **overrides: Any) -> Path:
        data: dict[str, Any] = {
            "environment": "lab",
            "targets": [
                {"name": "g1-vps", "kind": "guest", "customer": "c-one", "address": LINKS["g1"][1]},
                {"name": "g2-web", "kind": "guest", "customer": "c-two", "address": LINKS["g2"][1]},
            ],
            "ports": role_ports(),
            "max_rate": 300,
            "version_intensity": 5,
            "host_timeout_minutes": 10,
            "confirm_timeout_seconds": 5,
            "canary_address": LINKS["g1"][0],
            "canary_port": 0,
            "report_dir": str(self.tmp / "reports"),
            "metrics_file": str(self.tmp / "metrics" / "vpsfleet_audit.prom"),
            "nmap": str(self.tmp / "nmap"),
        }
        data.update(overrides)
        path = self.tmp / "audit.json"
        path.write_text(json.dumps(data))
        return path

    def audit(self, *args: str, config: Path | None = None) -> tuple[int, dict[str, Any]]:
        argv = self.net.exec_argv("mon", str(self.program), "--config", str(config or self.config()), *args)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        assert done.stdout.strip(), done.stderr
        return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])

    def nmap_calls(self) -> list[str]:
        return self.nmap_log.read_text().splitlines() if self.nmap_log.exists() else []


@pytest.fixture(scope="session")
def audit_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditLab]:
    if not is_root():
        pytest.skip("network namespaces need root")
    if missing := missing_tools():
        pytest.skip(
            f"missing {', '.join(missing)}: apt-get install the list scripts/debian-packages/75-audit.txt"
        )
    tmp = tmp_path_factory.mktemp("audit")
    tmp.chmod(0o755)  # tinyproxy and ngircd drop to nobody
    program = tmp / "vpsfleet-audit"
    program.write_bytes(build_bytes(ARTIFACT))
    program.chmod(0o755)
    nmap_log = tmp / "nmap-calls.log"
    # A shim that records every command line, then runs Debian's nmap.
    shim = tmp / "nmap"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {nmap_log}\nexec /usr/bin/nmap "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    net = NetLab()
    try:
        net.up()
        g1, g2 = LINKS["g1"][1], LINKS["g2"][1]
        (tmp / "tinyproxy.conf").write_text(TINYPROXY.format(address=g1, tmp=tmp))
        (tmp / "ngircd.conf").write_text(NGIRCD.format(address=g1, tmp=tmp))
        net.start("g1", "tinyproxy", "-d", "-c", str(tmp / "tinyproxy.conf"))
        net.start("g1", "ngircd", "-n", "-f", str(tmp / "ngircd.conf"))
        net.start("g1", sys.executable, str(HERE / "hostile_irc.py"), g1, "7000")
        site = tmp / "site"
        site.mkdir()
        (site / "index.html").write_text("<h1>just a web site</h1>\n")
        net.start("g2", sys.executable, "-m", "http.server", "8080", "--bind", g2, cwd=site)
        net.wait_listening("g1", [3128, 6667, 7000])
        net.wait_listening("g2", [8080])
        yield AuditLab(net, tmp, program, nmap_log)
    finally:
        net.down()
