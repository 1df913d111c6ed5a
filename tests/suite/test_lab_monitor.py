"""The lab's monitor demo (vpsfleet/lab_monitor.py): what it reads from Prometheus and the sink.
The demo itself runs in `make lab` against the lab's real monitor (docs/lab.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpsfleet.lab_monitor import DemoFailed, parse_headers, probed_machines, targets, wait_for
from vpsfleet.loader import load_fleet

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab" / "fleet.yml"


def test_the_monitor_must_ping_active_guests_and_delivered_servers_only() -> None:
    fleet = load_fleet(LAB)
    assert probed_machines(fleet) == [
        ("alpha-app", "198.51.100.11"), ("alpha-dedi", "198.51.100.20"),
        ("alpha-web", "198.51.100.10"), ("bravo-dev", "198.51.100.13"),
        ("bravo-vps", "198.51.100.12"),
    ]  # bravo-dedi is not delivered yet (M26 counts from delivery)


def test_targets_name_what_is_down_and_what_no_probe_answers_for() -> None:
    fleet = load_fleet(LAB)
    up = [({"job": "node", "guest": "alpha-web"}, 1.0), ({"job": "node", "guest": "alpha-app"}, 0.0),
          ({"job": "prometheus", "instance": "localhost:9090"}, 1.0)]
    probes = [({"job": "sla_icmp", "guest": name}, 1.0)
              for name in ("alpha-app", "alpha-web", "bravo-vps")]
    probes += [({"job": "sla_icmp", "guest": "bravo-dev"}, 0.0)]
    seen = targets(fleet, up, probes)
    assert seen.up == ("node alpha-web", "prometheus localhost:9090")
    assert seen.down == ("node alpha-app",)
    assert seen.unprobed == ("alpha-dedi", "bravo-dev")


def test_sink_headers_are_read_per_file_and_lines_without_a_header_are_ignored() -> None:
    listing = (
        "/var/mail/sink/new/1.a:X-Vpsfleet-Ticket: ProbeDown/guest=alpha-app\n"
        "/var/mail/sink/new/1.a:X-Vpsfleet-Status: firing\n"
        "/var/mail/sink/new/2.b:X-Vpsfleet-Ticket: ProbeDown/guest=alpha-app\n"
        "/var/mail/sink/new/2.b:X-Vpsfleet-Status: resolved\n"
        "garbage without colon\n"
        "/var/mail/sink/new/3.c:X-Vpsfleet-Status: firing\n"
    )
    mails = parse_headers(listing)
    assert [(m.file.rsplit("/", 1)[1], m.ticket, m.status) for m in mails] == [
        ("1.a", "ProbeDown/guest=alpha-app", "firing"),
        ("2.b", "ProbeDown/guest=alpha-app", "resolved"),
        ("3.c", "", "firing"),
    ]


def test_a_step_that_does_not_happen_in_time_fails_with_its_name() -> None:
    calls: list[int] = []

    def never() -> str | None:
        calls.append(1)
        return None

    with pytest.raises(DemoFailed, match="the FIRING ticket: not seen within 0 s"):
        wait_for("the FIRING ticket", 0, never, step=0)
    assert calls == [1]
    assert wait_for("x", 10, lambda: "found", step=0) == "found"
