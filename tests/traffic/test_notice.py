"""The throttle notice's figures, in the contracts' decimal units."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from vpsfleet_agents.traffic.config import parse
from vpsfleet_agents.traffic.notice import amount, rate, throttle_notice


@pytest.mark.parametrize(
    ("count", "text"),
    [(10 * 10**12, "10 TB"), (10_250_000_000_000, "10.2 TB"), (300_000, "300 kB"), (999, "999 B")],
)
def test_amounts_are_decimal_as_in_the_contract(count: int, text: str) -> None:
    assert amount(count) == text


def test_rates_read_as_the_contract_writes_them() -> None:
    assert (rate(1_000), rate(100_000), rate(512)) == ("1 Mbit/s", "100 Mbit/s", "512 kbit/s")


def test_the_english_notice_names_the_guest_the_rate_and_the_local_end_of_the_cycle() -> None:
    config = parse(
        {
            "time_zone": "Europe/Paris",
            "mail_from": "noc@provider.example",
            "operations_email": "ops@provider.example",
            "guests": [
                {
                    "domain": "alpha-vps",
                    "interface": "vf-alpha",
                    "quota_bytes": 10 * 10**12,
                    "throttle_kbit_s": 1_000,
                    "plan_kbit_s": 100_000,
                    "customer_email": "client@customer.example",
                    "language": "en",
                }
            ],
        },
        Path("t.json"),
    )
    end = dt.datetime(2026, 7, 31, 22, 0, tzinfo=dt.UTC)  # 2026-08-01 00:00 in Paris (CEST)
    message = throttle_notice(config, config.guests[0], 10 * 10**12 + 5, end, end - dt.timedelta(days=3))
    assert message["Subject"] == "[alpha-vps] Outbound traffic quota reached: rate limited to 1 Mbit/s"
    body = message.get_content()
    assert "sent 10 TB of outbound traffic" in body and "its plan's monthly volume (10 TB)" in body
    assert "until the end of the current billing cycle, 2026-08-01 00:00 (Europe/Paris)" in body
    assert "Your plan's rate (100 Mbit/s)" in body
