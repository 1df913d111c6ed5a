"""Bad input to `vpsfleet sla report`: a clear message and an exit code, never a traceback."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpsfleet.cli import main

from .conftest import free_port


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["sla", "report", *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


class Garbage(http.server.BaseHTTPRequestHandler):
    body = b"<html>not a Prometheus</html>"

    def do_POST(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


class WrongShape(Garbage):
    body = b'{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "x"]}]}}'  # noqa: E501


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def garbage() -> Iterator[str]:
    yield from serve(Garbage)


@pytest.fixture
def wrong_shape() -> Iterator[str]:
    yield from serve(WrongShape)


def test_an_unknown_guest(sla_fleet: Path, prometheus_url: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, str(sla_fleet), "--month", "2025-01", "--prometheus", prometheus_url,
                    "--guest", "nosuch")
    assert code == 2
    assert "no guest or dedicated server named nosuch" in err


def test_a_month_in_the_future(sla_fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, str(sla_fleet), "--month", "2998-05", "--prometheus",
                    "http://127.0.0.1:1")
    assert code == 2
    assert "2998-05 has not begun" in err


FULL_WIDTH_2025 = "\uff12\uff10\uff12\uff15"


@pytest.mark.parametrize("month", ["2025-13", "2025-1", "25-01", "2025-01\n", f"{FULL_WIDTH_2025}-01"])
def test_a_malformed_month(sla_fleet: Path, capsys: pytest.CaptureFixture[str],
                           month: str) -> None:
    code, err = run(capsys, str(sla_fleet), "--month", month, "--prometheus", "http://x")
    assert code == 2
    assert "is not a month YYYY-MM" in err


def test_an_unreachable_prometheus(sla_fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, err = run(capsys, str(sla_fleet), "--month", "2025-01", "--prometheus", url)
    assert code == 3
    assert f"cannot reach Prometheus at {url}" in err


def test_a_prometheus_answering_garbage(sla_fleet: Path, garbage: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, str(sla_fleet), "--month", "2025-01", "--prometheus", garbage)
    assert code == 3
    assert "did not answer JSON" in err


def test_a_prometheus_answering_a_sample_that_is_no_number(
    sla_fleet: Path, wrong_shape: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(capsys, str(sla_fleet), "--month", "2025-01", "--prometheus", wrong_shape)
    assert code == 3
    assert "is not a number" in err


def test_a_fleet_without_monitor_needs_a_url(sla_fleet: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, str(sla_fleet), "--month", "2025-01")
    assert code == 2
    assert "--prometheus URL" in err
