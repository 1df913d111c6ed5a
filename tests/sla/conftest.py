"""A real Prometheus (the Debian package) filled with known probe histories of past months.

The histories are written as OpenMetrics, turned into TSDB blocks by `promtool tsdb
create-blocks-from openmetrics`, and served by `prometheus` on 127.0.0.1 with an ephemeral port,
no scrape job and a long retention, for the whole session; it is stopped afterwards.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.processes import stop

CORPUS = Path(__file__).resolve().parents[1] / "fleet" / "corpus"
STEP = 15  # the probe interval, seconds


def utc(text: str) -> int:
    """Seconds since the epoch of a UTC instant written 2025-01-10T10:00:00."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


@dataclass
class History:
    """One machine's probes over [start, end): every 15 s, up, except the outages (first failed
    probe at `at`, first successful one `seconds` later) and the gaps (no probe at all)."""

    label: str
    name: str
    start: int
    end: int
    outages: list[tuple[int, int]] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)

    def samples(self) -> list[tuple[int, int]]:
        def hidden(t: int) -> bool:
            return any(a <= t <= a + d for a, d in self.outages) or any(
                a <= t < a + d for a, d in self.gaps
            )

        out = [(t, 1) for t in range(self.start, self.end, STEP) if not hidden(t)]
        for a, d in self.outages:
            out += [(t, 0) for t in range(a, a + d, STEP)]
            out.append((a + d, 1))
        return sorted(out)


# Months (Europe/Paris): January 2025 starts 2024-12-31T23:00Z, February 2025-01-31T23:00Z,
# March 2025-02-28T23:00Z and ends 2025-03-31T22:00Z (summer time from 30 March).
JAN = (utc("2024-12-31T23:00:00"), utc("2025-01-31T23:00:00"))
FEB = (utc("2025-01-31T23:00:00"), utc("2025-02-28T23:00:00"))
MAR = (utc("2025-02-28T23:00:00"), utc("2025-03-31T22:00:00"))
MAINTENANCE = ("2025-01-20T01:00:00Z", "2025-01-20T03:00:00Z")


def histories() -> list[History]:
    t = utc
    return [
        History("guest", "g-259", *JAN, outages=[(t("2025-01-10T10:00:00"), 179)]),
        History("guest", "g-301", *JAN, outages=[(t("2025-01-10T10:00:00"), 181)]),
        History("guest", "g-4m", *JAN, outages=[(t("2025-01-10T10:00:00"), 240)]),
        History("guest", "g-61m", *JAN, outages=[(t("2025-01-10T10:00:00"), 3660)]),
        History("guest", "g-short", *JAN, outages=[
            (t("2025-01-05T08:00:00"), 60), (t("2025-01-06T08:00:00"), 60),
            (t("2025-01-07T08:00:00"), 180),  # exactly the threshold: not more than 3 min
            (t("2025-01-08T08:00:00"), 300), (t("2025-01-09T08:00:00"), 300),
        ]),
        History("guest", "g-cap", *JAN, outages=[
            (t(f"2025-01-{day:02d}T12:00:00"), 600) for day in range(2, 12)
        ]),
        History("guest", "g-maint", *JAN, outages=[
            (t("2025-01-20T01:30:00"), 3660),  # inside the maintenance window
            (t("2025-01-25T12:00:00"), 360),
        ]),
        History("guest", "g-gap", *JAN, gaps=[(t("2025-01-15T06:00:00"), 7200)]),
        History("guest", "g-nosla", *JAN, outages=[(t("2025-01-10T10:00:00"), 600)]),
        History("server", "ds1", *JAN, outages=[(t("2025-01-10T10:00:00"), 600)]),
        History("guest", "g-feb", *FEB, outages=[(t("2025-02-10T10:00:00"), 600)]),
        # Across the change to summer time (2025-03-30T01:00Z: 02:00 local becomes 03:00).
        History("guest", "g-dst", *MAR, outages=[(t("2025-03-30T00:58:00"), 300)]),
    ]


def fleet_document() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CORPUS / "valid-minimal.yml").read_text())
    data["hosts"][0]["capacity"] = {"vcpu": 64, "ram_mb": 262144, "disk_gb": 4000}
    data["offers"].append({"name": "budget", "kind": "unmanaged_vps", "root": "customer",
                           "sla_percent": None, "no_sla": True, "backup": False})
    data["offers"].append({"name": "dedi", "kind": "dedicated", "root": "customer",
                           "sla_percent": 99.9, "backup": False})
    data["customers"][0]["created"] = "2024-06-01"
    names = [h.name for h in histories() if h.label == "guest"] + ["g-nodata"]
    data["guests"] = [
        {"name": name, "created": "2024-06-01", "customer": "c1",
         "offer": "budget" if name == "g-nosla" else "unmanaged", "plan": "s", "host": "hv1",
         "image": "debian-12", "ipv4": f"198.51.100.{20 + i}"}
        for i, name in enumerate(names)
    ]
    data["dedicated_servers"] = [
        {"name": "ds1", "datacenter": "dc-a", "customer": "c1", "offer": "dedi",
         "ipv4": "198.51.100.99", "paid_on": "2024-06-01", "delivered_on": "2024-06-03"}
    ]
    data["maintenance"] = [
        {"start": MAINTENANCE[0], "end": MAINTENANCE[1], "scope": ["g-maint"],
         "reason": "host kernel upgrade"}
    ]
    return data


@pytest.fixture(scope="session")
def sla_fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "fleet.yml"
    path.write_text(yaml.safe_dump(fleet_document(), sort_keys=False))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_prometheus(folder: Path, histories: list[History]) -> Iterator[str]:
    """Backfills the histories into a TSDB under `folder` and serves it; yields its URL."""
    source = folder / "probes.om"
    with source.open("w") as out:
        out.write("# HELP probe_success Whether the probe succeeded.\n")
        out.write("# TYPE probe_success gauge\n")
        for history in histories:
            series = f'probe_success{{job="sla_icmp",{history.label}="{history.name}"}}'
            out.writelines(f"{series} {v} {t}\n" for t, v in history.samples())
        out.write("# EOF\n")
    yield from serve_backfilled(folder, source)


def serve_backfilled(folder: Path, source: Path) -> Generator[str, None, None]:
    """Turns the OpenMetrics file `source` into TSDB blocks under `folder`, serves them on an
    ephemeral port of 127.0.0.1 (no scrape job, long retention) and yields the URL; stops
    Prometheus afterwards."""
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.fail("the Debian package prometheus is missing: run scripts/setup.sh")
    data = folder / "data"
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=800h",
         str(source), str(data)],
        check=True, capture_output=True,
    )
    source.unlink()
    config = folder / "prometheus.yml"
    config.write_text("global: {}\n")  # no scrape job: only the backfilled blocks
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
         "--storage.tsdb.retention.time=36500d", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start: {(folder / 'prometheus.log').read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="session")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_prometheus(tmp_path_factory.mktemp("prometheus"), histories())
