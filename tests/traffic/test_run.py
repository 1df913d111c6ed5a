"""The job's decisions over a host's guests, against a stand-in for libvirt (fake_libvirt.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.traffic.fake_libvirt import FakeConn, FakeDomain, error
from vpsfleet_agents.traffic.config import Config, parse
from vpsfleet_agents.traffic.counting import Ledger
from vpsfleet_agents.traffic.run import Outcome, run_guests

LIVE, CONFIG = libvirt.VIR_DOMAIN_AFFECT_LIVE, libvirt.VIR_DOMAIN_AFFECT_CONFIG
NOW = dt.datetime(2026, 12, 14, 9, 30, tzinfo=dt.UTC)
END = dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.UTC)
QUOTA = 1_000_000


def config(*names: str, quota: int = QUOTA) -> Config:
    guests = [
        {
            "domain": n,
            "interface": f"vf-{n[:8]}",
            "quota_bytes": quota,
            "throttle_kbit_s": 1_000,
            "plan_kbit_s": 100_000,
            "customer_email": f"{n}@customer.example",
            "language": "fr",
        }
        for n in names
    ]
    return parse(
        {
            "time_zone": "Europe/Paris",
            "state_dir": "/unused",
            "mail_from": "noc@provider.example",
            "operations_email": "ops@provider.example",
            "guests": guests,
        },
        Path("traffic.json"),
    )


class Mailbox:
    def __init__(self, failure: str | None = None) -> None:
        self.sent: list[EmailMessage] = []
        self.failure = failure

    def __call__(self, message: EmailMessage) -> str | None:
        if self.failure:
            return self.failure
        self.sent.append(message)
        return None


def run(
    conn: FakeConn,
    cfg: Config,
    ledgers: dict[str, Ledger],
    mailbox: Mailbox | None = None,
    now: dt.datetime = NOW,
) -> dict[str, Outcome]:
    saved: list[dict[str, Ledger]] = []
    outcomes = run_guests(
        conn,
        cfg,
        ledgers,
        "boot-a",
        now,
        END,
        mailbox or Mailbox(),
        lambda current: saved.append(dict(current)),
    )
    assert len(saved) == len(cfg.guests), "saved after each guest"
    return {o.guest: o for o in outcomes}


def domain(name: str, **kwargs: Any) -> FakeDomain:
    return FakeDomain(name, f"vf-{name[:8]}", **kwargs)


def test_a_gone_domain_is_reported_and_the_next_guest_is_still_throttled() -> None:
    beta = domain("beta-vps")
    conn, cfg = FakeConn(beta), config("alpha-vps", "beta-vps")
    ledgers: dict[str, Ledger] = {}
    run(conn, cfg, ledgers)  # baseline
    beta.tx_bytes = QUOTA
    outcomes = run(conn, cfg, ledgers)
    assert outcomes["alpha-vps"].errors == [
        "domain alpha-vps: Domain not found: no domain with matching name 'alpha-vps'"
    ]
    assert not outcomes["alpha-vps"].guest_ok
    assert outcomes["beta-vps"].throttled and outcomes["beta-vps"].errors == []
    # 1000 kbit/s = 125 kB/s, set live then persistent (libvirt takes one at a time).
    assert beta.calls == [(LIVE, 125), (CONFIG, 125)]


def test_below_the_quota_nothing_is_changed_and_no_one_is_told() -> None:
    alpha, mailbox = domain("alpha-vps"), Mailbox()
    ledgers: dict[str, Ledger] = {}
    run(FakeConn(alpha), config("alpha-vps"), ledgers, mailbox)
    alpha.tx_bytes = QUOTA - 1
    outcome = run(FakeConn(alpha), config("alpha-vps"), ledgers, mailbox)["alpha-vps"]
    assert (outcome.counted_bytes, outcome.throttled) == (QUOTA - 1, False)
    assert alpha.calls == [] and mailbox.sent == []


def test_the_throttle_is_told_once_and_in_the_customers_language() -> None:
    alpha, mailbox = domain("alpha-vps"), Mailbox()
    conn, cfg = FakeConn(alpha), config("alpha-vps")
    ledgers: dict[str, Ledger] = {}
    run(conn, cfg, ledgers, mailbox)
    alpha.tx_bytes = QUOTA + 5
    run(conn, cfg, ledgers, mailbox)
    run(conn, cfg, ledgers, mailbox)
    assert len(mailbox.sent) == 1
    message = mailbox.sent[0]
    assert message["To"] == "alpha-vps@customer.example" and message["Cc"] == "ops@provider.example"
    assert message["Subject"] == (
        "VPS alpha-vps : volume de trafic mensuel atteint, débit sortant limité à 1 Mbit/s"
    )
    assert message["X-Vpsfleet-Notice"] == "traffic_throttle" and message["Content-Language"] == "fr"
    text = message.get_body(("plain",))
    assert text is not None
    body = " ".join(text.get_content().replace("\u00a0", " ").split())
    assert "a émis 1 Mo de trafic sortant" in body
    assert "Débit sortant limité depuis le : 14 décembre 2026 à 09:30 UTC" in body
    assert "Fin du cycle : 1 janvier 2027 à 00:00 (Europe/Paris)" in body
    assert ledgers["alpha-vps"].notified and ledgers["alpha-vps"].throttled_at == "2026-12-14T09:30:00+00:00"


def test_a_notice_the_mta_refused_is_sent_on_the_next_run() -> None:
    alpha = domain("alpha-vps")
    conn, cfg = FakeConn(alpha), config("alpha-vps")
    ledgers: dict[str, Ledger] = {}
    run(conn, cfg, ledgers)
    alpha.tx_bytes = QUOTA
    refused = run(conn, cfg, ledgers, Mailbox("sendmail exit 75: deferred"))["alpha-vps"]
    assert refused.errors == ["domain alpha-vps: notice not sent: sendmail exit 75: deferred"]
    assert refused.throttled, "the throttle does not wait for the mail"
    mailbox = Mailbox()
    run(conn, cfg, ledgers, mailbox)
    assert len(mailbox.sent) == 1


def test_when_tc_refuses_the_live_change_the_persistent_one_is_still_made_and_reported() -> None:
    alpha = domain(
        "alpha-vps",
        refuse_live="internal error: Child process (tc filter add ...) unexpected exit "
        "status 2: Error: Failed to load TC action module.",
    )
    conn, cfg = FakeConn(alpha), config("alpha-vps")
    ledgers: dict[str, Ledger] = {}
    run(conn, cfg, ledgers)
    alpha.tx_bytes = QUOTA
    outcome = run(conn, cfg, ledgers)["alpha-vps"]
    assert (alpha.live_outbound, alpha.config_outbound) == (0, 125)
    assert not outcome.rate_ok and "Failed to load TC action module" in outcome.errors[0]
    alpha.refuse_live = None
    healed = run(conn, cfg, ledgers)["alpha-vps"]
    assert (alpha.live_outbound, healed.rate_ok, healed.changes) == (
        125,
        True,
        ["throttled outbound to 125 kB/s (live)"],
    )


def test_a_restart_while_throttled_is_throttled_again_from_its_definition_and_loses_no_count() -> None:
    alpha = domain("alpha-vps")
    conn, cfg = FakeConn(alpha), config("alpha-vps")
    ledgers: dict[str, Ledger] = {}
    run(conn, cfg, ledgers)
    alpha.tx_bytes = QUOTA + 300
    run(conn, cfg, ledgers)
    alpha.restart()  # the persistent definition carries the throttle into the new run
    alpha.tx_bytes = 700
    outcome = run(conn, cfg, ledgers)["alpha-vps"]
    assert outcome.counted_bytes == QUOTA + 300 + 700
    assert outcome.changes == [] and alpha.live_outbound == 125


def test_a_stopped_domain_is_not_counted_but_its_definition_is_throttled() -> None:
    alpha = domain("alpha-vps", active=False)
    outcome = run(FakeConn(alpha), config("alpha-vps"), {"alpha-vps": Ledger(counted_bytes=QUOTA)})[
        "alpha-vps"
    ]
    assert outcome.throttled and alpha.calls == [(CONFIG, 125)]


def test_the_plans_rate_comes_back_only_where_the_throttle_was() -> None:
    alpha = domain("alpha-vps")
    alpha.live_outbound, alpha.config_outbound = (
        125,
        12_500,
    )  # throttled live; already the plan's persistently
    outcome = run(FakeConn(alpha), config("alpha-vps"), {"alpha-vps": Ledger(counter=None)})["alpha-vps"]
    assert alpha.calls == [(LIVE, 12_500)] and outcome.changes == ["restored outbound to 12500 kB/s (live)"]
    # An interface without the throttle is Pulumi's to shape: left as it is.
    beta = domain("beta-vps")
    beta.live_outbound = beta.config_outbound = 0
    run(FakeConn(beta), config("beta-vps"), {})
    assert beta.calls == []


def test_a_throttle_lifted_by_hand_stays_lifted_for_the_rest_of_the_cycle() -> None:
    alpha = domain("alpha-vps")
    alpha.live_outbound = alpha.config_outbound = 125
    ledgers = {"alpha-vps": Ledger(counted_bytes=QUOTA * 2, throttled_at="t", notified=True, lifted_at="u")}
    outcome = run(FakeConn(alpha), config("alpha-vps"), ledgers)["alpha-vps"]
    assert not outcome.throttled and (alpha.live_outbound, alpha.config_outbound) == (12_500, 12_500)


@pytest.mark.parametrize("kind", ["ethernet", "direct"])
def test_an_interface_libvirt_reports_from_the_hosts_side_is_refused_not_guessed(kind: str) -> None:
    tap = domain("alpha-vps", kind=kind)
    outcome = run(FakeConn(tap), config("alpha-vps"), {})["alpha-vps"]
    assert outcome.errors == [f"domain alpha-vps: interface vf-alpha-vp of type '{kind}' is not counted"]
    assert not outcome.guest_ok and tap.calls == []


def test_with_no_interface_configured_the_domains_only_one_is_used_by_its_mac() -> None:
    alpha = domain("alpha-vps")
    cfg = config("alpha-vps")
    cfg = replace(cfg, guests=(replace(cfg.guests[0], interface=None),))
    ledgers: dict[str, Ledger] = {}
    run(FakeConn(alpha), cfg, ledgers)
    alpha.tx_bytes = QUOTA
    assert run(FakeConn(alpha), cfg, ledgers)["alpha-vps"].throttled
    assert alpha.calls == [(LIVE, 125), (CONFIG, 125)]
    two = domain("beta-vps", interfaces=2)
    cfg = config("beta-vps")
    cfg = replace(cfg, guests=(replace(cfg.guests[0], interface=None),))
    outcome = run(FakeConn(two), cfg, {})["beta-vps"]
    assert outcome.errors == ["domain beta-vps: 2 interfaces: configure which one is counted"]


def test_a_domain_undefined_during_the_run_is_that_guests_error_only() -> None:
    class Vanishing(FakeDomain):
        def XMLDesc(self, flags: int = 0) -> str:
            raise error("Domain not found: no domain with matching uuid")

    gone, beta = Vanishing("alpha-vps", "vf-alpha-vp"), domain("beta-vps")
    outcomes = run(FakeConn(gone, beta), config("alpha-vps", "beta-vps"), {})
    assert outcomes["alpha-vps"].errors == [
        "domain alpha-vps: Domain not found: no domain with matching uuid"
    ]
    assert outcomes["beta-vps"].guest_ok and outcomes["beta-vps"].errors == []
