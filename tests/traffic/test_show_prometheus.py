"""`vpsfleet show --traffic` against a real Prometheus (the Debian package) that scrapes the traffic
job's real textfile output, as the monitor scrapes a hypervisor's node exporter.

The job runs (its CLI, libvirt replaced by the stand-in) for three guests of the lab fleet and
writes its metrics file; a small HTTP server on 127.0.0.1 serves that file at /metrics as the node
exporter's textfile collector would; Prometheus scrapes it every second, on loopback only.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import libvirt
import pytest

from tests.processes import stop
from tests.sla.conftest import free_port
from tests.traffic.fake_libvirt import FakeConn, FakeDomain
from vpsfleet.cli import main as vpsfleet
from vpsfleet_agents.traffic import cli as traffic_job

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventories" / "lab" / "fleet.yml"
HOST = "labhv1"
QUOTA = 1_000_000


def guest(name: str) -> dict[str, Any]:
    return {
        "domain": name,
        "interface": f"vf-{name[:8]}",
        "quota_bytes": QUOTA,
        "throttle_kbit_s": 1_000,
        "plan_kbit_s": 100_000,
        "customer_email": "client@customer.example",
        "language": "fr",
    }


def serve_file(path: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """The node exporter's part: the textfile's content at /metrics (and at any other path, so
    that a client mistaking it for a Prometheus gets text, not JSON)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = answer

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.answer()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


def query(url: str, expr: str) -> list[Any]:
    body = urllib.parse.urlencode({"query": expr}).encode()
    with urllib.request.urlopen(f"{url}/api/v1/query", data=body, timeout=5) as answer:
        result: list[Any] = json.load(answer)["data"]["result"]
        return result


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, dt.datetime]]:
    """(Prometheus URL, the exporter's address, the job's run time) once the job's metrics are
    scraped."""
    work = tmp_path_factory.mktemp("traffic-show")
    throttled, below, lifted = (FakeDomain(n, f"vf-{n[:8]}") for n in ("alpha-web", "alpha-app", "bravo-vps"))
    metrics_file = work / "textfile" / "vpsfleet_traffic.prom"
    config = work / "traffic.json"
    config.write_text(
        json.dumps(
            {
                "time_zone": "Europe/Paris",
                "state_dir": str(work / "state"),
                "metrics_file": str(metrics_file),
                "mail_from": "noc@provider.example",
                "operations_email": "ops@provider.example",
                "sendmail": "/bin/true",
                "guests": [guest("alpha-web"), guest("alpha-app"), guest("bravo-vps")],
            }
        )
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    patch = pytest.MonkeyPatch()
    patch.setattr(libvirt, "open", lambda uri: FakeConn(throttled, below, lifted))
    try:
        job = ["--config", str(config), "--now", now.isoformat()]
        assert traffic_job.main([*job, "run"]) == 0  # first sight: the counters' start
        throttled.tx_bytes, below.tx_bytes, lifted.tx_bytes = 1_500_000, 250_000, 2_000_000
        assert traffic_job.main([*job, "run"]) == 0
        assert traffic_job.main([*job, "lift", "bravo-vps"]) == 0
    finally:
        patch.undo()

    if shutil.which("prometheus") is None:
        pytest.fail("the Debian package prometheus is missing: run scripts/setup.sh")
    exporter, address = serve_file(metrics_file)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: hypervisor_node\n"
        "    static_configs:\n"
        f"      - targets: ['{address}']\n"
        f"        labels: {{host: {HOST}}}\n"
    )
    log = (work / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # ready, then the first scrape holds the job's series
            try:
                if query(url, 'vpsfleet_traffic_lifted{guest="bravo-vps"}'):
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not scrape the job: {(work / 'prometheus.log').read_text()}")
            time.sleep(0.3)
        yield url, address, now
    finally:
        stop(process)
        log.close()
        exporter.shutdown()


def show(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = vpsfleet(["show", str(LAB), "--today", "2026-11-23", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out


def squeeze(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


def test_show_gives_each_guests_traffic_against_its_quota_and_its_throttle(
    scraped: tuple[str, str, dt.datetime], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, now = scraped
    status, out = show(capsys, "--prometheus", url)
    assert status == 0
    lines = squeeze(out)
    when = f"{now:%Y-%m-%d %H:%M} UTC"
    assert "alpha-web 198.51.100.10 labhv1 lab-a vps-m managed c-alpha active labstore1" in lines
    (title,) = [line for line in lines if line.startswith("Traffic this cycle (M8)")]
    assert title.startswith(f"Traffic this cycle (M8), from {url} at ")
    month = now.astimezone(ZoneInfo("Europe/Paris")).date().replace(day=28) + dt.timedelta(days=4)
    assert title.endswith(f"; the cycle ends {month:%Y-%m}-01 00:00 Europe/Paris")
    assert f"traffic job on {HOST} last ran {when}" in lines
    assert f"alpha-web {HOST} 1.5 MB 1 MB 150.0% THROTTLED since {when}" in lines
    assert f"alpha-app {HOST} 250 kB 1 MB 25.0% normal" in lines
    assert f"bravo-vps {HOST} 2 MB 1 MB 200.0% over quota, throttle lifted by hand" in lines
    # A live guest of the fleet that no job reports.
    assert "bravo-dev labhv1 - - - no data (job not run, or its host not scraped)" in lines


def test_a_monitor_that_cannot_be_reached_is_one_clear_line(
    scraped: tuple[str, str, dt.datetime], capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    status, out = show(capsys, "--prometheus", closed)
    assert status == 0, "the fleet is shown all the same"
    assert "alpha-web  198.51.100.10  labhv1" in out
    assert out.rstrip().splitlines()[-1] == (
        f"Traffic this cycle (M8): not shown, cannot reach Prometheus at {closed}: [Errno 111] "
        "Connection refused (the monitor is down or unreachable from here)"
    )


def test_something_else_than_a_prometheus_is_named_as_such(
    scraped: tuple[str, str, dt.datetime], capsys: pytest.CaptureFixture[str]
) -> None:
    _, exporter, _ = scraped  # the exporter answers its text format, not the API's JSON
    status, out = show(capsys, "--prometheus", f"http://{exporter}")
    assert status == 0
    assert out.rstrip().splitlines()[-1] == (
        f"Traffic this cycle (M8): not shown, http://{exporter}: http://{exporter} did not answer "
        "JSON: is it a Prometheus?"
    )


def test_without_traffic_show_asks_no_one(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = show(capsys)
    assert status == 0 and "Traffic this cycle" not in out


def test_a_fleet_without_a_monitor_needs_a_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monitor = "monitors:\n  - name: labmon1\n    datacenter: lab-b\n    address: 203.0.113.20\n"
    assert monitor in LAB.read_text()
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(LAB.read_text().replace(monitor, ""))
    status = vpsfleet(["show", str(fleet), "--today", "2026-11-23", "--traffic"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.out.rstrip().splitlines()[-1] == (
        "Traffic this cycle (M8): not shown, the fleet declares no monitor: give --prometheus URL"
    )
