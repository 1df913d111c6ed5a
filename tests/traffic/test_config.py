"""The job's configuration: every problem at once, with its location."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vpsfleet_agents.traffic.config import ConfigError, load

GUEST = {
    "domain": "alpha-vps",
    "interface": "vf-alpha",
    "quota_bytes": 10 * 10**12,
    "throttle_kbit_s": 1_000,
    "plan_kbit_s": 100_000,
    "customer_email": "client@customer.example",
    "language": "en",
}
GOOD: dict[str, Any] = {
    "time_zone": "Europe/Paris",
    "state_dir": "/var/lib/vpsfleet-traffic",
    "mail_from": "noc@provider.example",
    "operations_email": "ops@provider.example",
    "guests": [GUEST],
}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "traffic.json"
    path.write_text(json.dumps(data))
    return path


def test_a_good_config_gets_its_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, GOOD))
    assert config.libvirt_uri == "qemu:///system" and config.sendmail == "/usr/sbin/sendmail"
    assert config.metrics_file is None
    assert config.guests[0].quota_bytes == 10 * 10**12 and config.guests[0].language == "en"


def test_every_problem_is_reported_with_its_place(tmp_path: Path) -> None:
    bad = dict(GOOD, time_zone="Mars/Olympus", operations_email="ops", colour="red")
    bad["guests"] = [
        dict(GUEST, quota_bytes=True, interface="vf alpha"),
        dict(GUEST, throttle_kbit_s=200_000, language="de", extra=1),
        "beta-vps",
    ]
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, bad))
    assert sorted(caught.value.problems) == sorted(
        [
            "colour: unknown field",
            "time_zone: unknown time zone 'Mars/Olympus'",
            "operations_email: not an e-mail address: 'ops'",
            "guests[0].interface: not a network device name: 'vf alpha'",
            "guests[0].quota_bytes: a positive integer is required, got True",
            "guests[1].extra: unknown field",
            "guests[1].throttle_kbit_s: 200000 is not below the plan's rate 100000",
            "guests[1].language: one of fr, en is required, got 'de'",
            "guests[1].domain: 'alpha-vps' already at guests[0]",
            "guests[2]: a mapping is required",
        ]
    )


def test_a_file_that_is_not_json_says_where(tmp_path: Path) -> None:
    path = tmp_path / "traffic.json"
    path.write_text('{\n  "guests": [,]\n}\n')
    with pytest.raises(ConfigError, match="line 2 column"):
        load(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "absent.json")
