"""vpsfleet-traffic's commands, with libvirt's connection replaced by the stand-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.metric_samples import samples
from tests.traffic.fake_libvirt import FakeConn, FakeDomain, error
from vpsfleet_agents.traffic import cli

NOW = "2026-12-14T09:30:00+00:00"


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeDomain]:
    alpha = FakeDomain("alpha-vps", "vf-alpha")
    monkeypatch.setattr(libvirt, "open", lambda uri: FakeConn(alpha))
    config = {
        "time_zone": "Europe/Paris",
        "state_dir": str(tmp_path / "state"),
        "metrics_file": str(tmp_path / "vpsfleet_traffic.prom"),
        "mail_from": "noc@provider.example",
        "operations_email": "ops@provider.example",
        "sendmail": "/bin/true",
        "guests": [
            {
                "domain": "alpha-vps",
                "interface": "vf-alpha",
                "quota_bytes": 1_000,
                "throttle_kbit_s": 1_000,
                "plan_kbit_s": 100_000,
                "customer_email": "client@customer.example",
                "language": "en",
            }
        ],
    }
    (tmp_path / "traffic.json").write_text(json.dumps(config))
    return tmp_path, alpha


def main(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status = cli.main(["--config", str(tmp_path / "traffic.json"), "--now", NOW, *args])
    return status, json.loads(capsys.readouterr().out)


def test_the_metrics_say_what_was_counted_and_decided(
    host: tuple[Path, FakeDomain], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, alpha = host
    main(tmp_path, capsys, "run")
    alpha.tx_bytes = 1_500
    status, _ = main(tmp_path, capsys, "run")
    assert status == 0
    assert samples((tmp_path / "vpsfleet_traffic.prom").read_text()) == {
        'vpsfleet_traffic_outbound_bytes{guest="alpha-vps"}': 1500,
        'vpsfleet_traffic_quota_bytes{guest="alpha-vps"}': 1000,
        'vpsfleet_traffic_throttled{guest="alpha-vps"}': 1,
        'vpsfleet_traffic_rate_ok{guest="alpha-vps"}': 1,
        'vpsfleet_traffic_guest_ok{guest="alpha-vps"}': 1,
        'vpsfleet_traffic_lifted{guest="alpha-vps"}': 0,
        'vpsfleet_traffic_throttled_since_timestamp_seconds{guest="alpha-vps"}': 1797240600,
        "vpsfleet_traffic_cycle_end_timestamp_seconds": 1798758000,  # 2026-12-31T23:00:00Z
        "vpsfleet_traffic_last_run_timestamp_seconds": 1797240600,  # 2026-12-14T09:30:00Z
    }


def test_lift_restores_the_plans_rate_until_the_cycle_ends(
    host: tuple[Path, FakeDomain], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, alpha = host
    main(tmp_path, capsys, "run")
    alpha.tx_bytes = 5_000
    main(tmp_path, capsys, "run")
    assert (alpha.live_outbound, alpha.config_outbound) == (125, 125)
    status, report = main(tmp_path, capsys, "lift", "alpha-vps")
    assert status == 0 and not report["guests"]["alpha-vps"]["throttled"]
    assert (alpha.live_outbound, alpha.config_outbound) == (12_500, 12_500)
    alpha.tx_bytes = 9_000
    main(tmp_path, capsys, "run")
    assert alpha.live_outbound == 12_500, "still lifted"
    found = samples((tmp_path / "vpsfleet_traffic.prom").read_text())
    assert found['vpsfleet_traffic_lifted{guest="alpha-vps"}'] == 1
    assert found['vpsfleet_traffic_throttled{guest="alpha-vps"}'] == 0
    assert not [key for key in found if key.startswith("vpsfleet_traffic_throttled_since_timestamp_seconds")]
    _, status_report = main(tmp_path, capsys, "status")
    assert status_report["guests"]["alpha-vps"]["lifted_at"] == NOW
    assert status_report["guests"]["alpha-vps"]["counted_bytes"] == 9_000


def test_lift_of_an_unknown_guest_changes_nothing(
    host: tuple[Path, FakeDomain], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, _ = host
    status, report = main(tmp_path, capsys, "lift", "beta-vps")
    assert status == 2 and "beta-vps: not a guest" in report["error"]
    assert not list((tmp_path / "state").glob("*.json"))


def test_a_bad_config_exits_2_and_writes_nothing(
    host: tuple[Path, FakeDomain], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, alpha = host
    (tmp_path / "traffic.json").write_text(json.dumps({"guests": "alpha-vps"}))
    status, report = main(tmp_path, capsys, "run")
    assert status == 2 and report["error"] == "bad configuration"
    assert "guests: a list is required" in report["problems"]
    assert not (tmp_path / "state").exists() and alpha.calls == []


def test_a_damaged_state_file_exits_2_and_is_left_as_it_is(
    host: tuple[Path, FakeDomain], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, alpha = host
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "2026-12.json").write_text("{truncated")
    status, report = main(tmp_path, capsys, "run")
    assert status == 2 and "unreadable state" in report["error"]
    assert (tmp_path / "state" / "2026-12.json").read_text() == "{truncated"
    assert alpha.calls == [] and not (tmp_path / "vpsfleet_traffic.prom").exists()


def test_an_unreachable_libvirtd_exits_1_and_changes_nothing(
    host: tuple[Path, FakeDomain], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path, _ = host

    def refuse(uri: str) -> None:
        raise error("Failed to connect socket to '/run/libvirt/libvirt-sock': Connection refused")

    monkeypatch.setattr(libvirt, "open", refuse)
    status, report = main(tmp_path, capsys, "run")
    assert status == 1 and "Connection refused" in report["error"]
    assert not list((tmp_path / "state").glob("*.json")) and not (tmp_path / "vpsfleet_traffic.prom").exists()
