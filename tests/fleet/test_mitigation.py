"""`vpsfleet mitigation start|stop` (M28): fleet edits, the offer's minimum, refusals that leave
the file byte for byte as it was, the Pro option, and the kept history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from vpsfleet.cli import main
from vpsfleet.deploy_changes import Kind, changes_between
from vpsfleet.filters import guest_rules
from vpsfleet.loader import load_fleet
from vpsfleet.mitigation import MitigationRefused, start, stop
from vpsfleet.schema import Mitigation
from vpsfleet.sla import to_ms
from vpsfleet.sla_report import entries

from .conftest import REPO

# A fleet of its own: two offers with their minimums (the managed one 26 h like PHOSPHORE's, the
# unmanaged one the policy's 24 h like MENGINE's), a Pro customer's guest, a suspended guest.
FLEET = """\
# The mitigation tests' fleet.
environment: mitigation
provider:
  name: Mitigation Hosting
  operations_email: ops@mitigation.example.net
  support_email: support@mitigation.example.net
  relay: {host: relay.mitigation.example.net, port: 587}
  operators: [{name: ops, ssh_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLE ops]}]
  management_networks: [198.51.100.240/29]
datacenters:
  - code: dc-a
    city: Paris
    country: FR
    dns_resolvers: [198.51.100.2]
    pools: [{name: pub, network: 198.51.100.0/24, gateway: 198.51.100.1, reserved: [198.51.100.2]}]
hosts:
  - name: hv1
    datacenter: dc-a
    uri: qemu:///system
    domain_type: qemu
    ipv4: 198.51.100.5
    capacity: {vcpu: 8, ram_mb: 16384, disk_gb: 200}
    overcommit: {cpu: 2.0, ram: 1.0}
    bridge: br0
    images: {debian-12: debian-12.qcow2}
plans:
  - {name: s, vcpu: 1, ram_mb: 2048, disk_gb: 20, bandwidth_mbps: 100, monthly_quota_tb: 10, throttle_mbps: 1}
offers:
  - name: managed
    kind: managed_vps
    root: provider
    sla_percent: 99.5
    backup: false
    mitigation_minimum_hours: 26  # PHOSPHORE
  - name: unmanaged
    kind: unmanaged_vps
    root: customer
    sla_percent: 99.99
    backup: false
  - name: dedicated
    kind: dedicated
    root: customer
    sla_percent: 99.9
    backup: false
    mitigation_minimum_hours: 26  # ITSGOW
customers:
  - {id: c1, created: 2026-01-05, name: Customer One, email: one@customer.example.com}
guests:
  - name: web1  # the managed one
    created: 2026-02-01
    customer: c1
    offer: managed
    plan: s
    host: hv1
    image: debian-12
    ipv4: 198.51.100.10
  - name: web2
    created: 2026-02-01
    customer: c1
    offer: unmanaged
    plan: s
    host: hv1
    image: debian-12
    ipv4: 198.51.100.11  # the address the recorded attack hits

  # A Pro customer: its own profile and edge rules (M28).
  - name: pro1
    created: 2026-02-01
    customer: c1
    offer: unmanaged
    plan: s
    host: hv1
    image: debian-12
    ipv4: 198.51.100.12
    pro:
      mitigation_profile: strict
      edge_rules:
        - {action: accept, port: 8443/tcp, source: 192.0.2.0/24}
        - {action: drop, port: 22/tcp}
  - name: sus1
    created: 2026-02-01
    customer: c1
    offer: unmanaged
    plan: s
    host: hv1
    image: debian-12
    ipv4: 198.51.100.13
    state: suspended
    suspended_on: 2026-11-20
dedicated_servers:
  - name: dedi1
    datacenter: dc-a
    customer: c1
    offer: dedicated
    ipv4: 198.51.100.20
    paid_on: 2026-11-02
    delivered_on: 2026-11-06

# The end of the file.
"""

T = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def fleet_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(FLEET)
    return path


def refused(call: Callable[[], object], path: Path) -> str:
    """The refusal's message, having checked that the file is byte for byte unchanged."""
    before = path.read_bytes()
    with pytest.raises(MitigationRefused) as err:
        call()
    assert path.read_bytes() == before
    return str(err.value)


def added_lines(old: str, new: str) -> list[str]:
    """The lines an edit added, checking it removed none: the rest is kept as written."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    added, i = [], 0
    for line in new_lines:
        if i < len(old_lines) and line == old_lines[i]:
            i += 1
        else:
            added.append(line)
    assert i == len(old_lines), f"line {old_lines[i]!r} was lost"
    return added


def test_start_records_since_profile_and_reason_and_keeps_the_rest(fleet_file: Path) -> None:
    done = start(fleet_file, "web2", profile="web", reason="udp flood on 198.51.100.11", now=T)
    # web2's offer says nothing: the policy's 24 h, from 10:00 on 1 December.
    assert (done.minimum_hours, done.earliest_end) == (24, dt.datetime(2026, 12, 2, 10, 0,
                                                                       tzinfo=dt.UTC))
    assert added_lines(FLEET, fleet_file.read_text()) == [
        "    mitigation:",
        "      since: 2026-12-01T10:00:00Z",
        "      profile: web",
        "      reason: udp flood on 198.51.100.11",
    ]
    text = fleet_file.read_text()
    # The new key sits in web2, and the blank line and comment that followed web2 still do.
    assert "      reason: udp flood on 198.51.100.11\n\n  # A Pro customer" in text
    guest = load_fleet(fleet_file, today=T.date()).guest("web2")
    assert guest is not None and guest.mitigation is not None
    assert guest.mitigation.since == T and guest.mitigation.profile == "web"


def test_the_minimum_comes_from_the_offer_24_or_26_hours(fleet_file: Path) -> None:
    start(fleet_file, "web1", profile="web", reason="attack", now=T)  # managed: 26 h
    start(fleet_file, "web2", profile="web", reason="attack", now=T)  # unmanaged: 24 h
    # web2: 10:00 + 24 h = 10:00 on 2 December; web1: 10:00 + 26 h = 12:00 on 2 December.
    message = refused(lambda: stop(fleet_file, "web2", now=T + 24 * HOUR - dt.timedelta(
        seconds=1)), fleet_file)
    assert "before 2026-12-02T10:00:00Z" in message and "24 h" in message
    assert stop(fleet_file, "web2", now=T + 24 * HOUR).ends_at == dt.datetime(
        2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    message = refused(lambda: stop(fleet_file, "web1", now=T + 25 * HOUR), fleet_file)
    assert "before 2026-12-02T12:00:00Z" in message and "26 h" in message
    stop(fleet_file, "web1", now=T + 26 * HOUR)
    fleet = load_fleet(fleet_file, today=T.date())
    ends = {name: fleet.guest(name).mitigation.ends_at  # type: ignore[union-attr]
            for name in ("web1", "web2")}
    assert ends == {"web1": dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC),
                    "web2": dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)}


def test_the_filter_keeps_the_offers_minimum_whatever_the_record_says(fleet_file: Path) -> None:
    fleet = load_fleet(fleet_file, today=T.date())
    # A record ending after 1 h, as a hand edit could write it: each guest's filter keeps the
    # mitigation until its offer's minimum, 26 h for web1 (managed), 24 h for web2.
    early = Mitigation(since=T, profile="web", ends_at=T + HOUR)

    def mitigated(name: str, at: dt.datetime) -> bool:
        guest = fleet.guest(name)
        assert guest is not None
        rules = guest_rules(fleet, guest.model_copy(update={"mitigation": early}), at)
        return any(r.why.startswith("mitigation") for r in rules)

    minute = dt.timedelta(minutes=1)
    assert mitigated("web1", T + 26 * HOUR - minute) and not mitigated("web1", T + 26 * HOUR)
    assert mitigated("web2", T + 24 * HOUR - minute) and not mitigated("web2", T + 24 * HOUR)


def test_start_refusals_leave_the_file_unchanged(fleet_file: Path) -> None:
    message = refused(lambda: start(fleet_file, "web2", profile="gold", reason="x", now=T),
                      fleet_file)
    assert "unknown mitigation profile 'gold'" in message and "known: strict, web" in message
    message = refused(lambda: start(fleet_file, "sus1", profile="web", reason="x", now=T),
                      fleet_file)
    assert "sus1 is suspended, not active" in message
    message = refused(lambda: start(fleet_file, "nope", profile="web", reason="x", now=T),
                      fleet_file)
    assert "no guest named 'nope'" in message
    message = refused(lambda: start(fleet_file, "web2", profile="web", reason="  ", now=T),
                      fleet_file)
    assert "a reason is required" in message
    start(fleet_file, "web2", profile="web", reason="first", now=T)
    message = refused(lambda: start(fleet_file, "web2", profile="strict", reason="again",
                                    now=T + 2 * HOUR), fleet_file)
    assert ("already under mitigation since 2026-12-01T10:00:00Z" in message
            and "from 2026-12-02T10:00:00Z on" in message)


def test_stop_refusals_leave_the_file_unchanged(fleet_file: Path) -> None:
    message = refused(lambda: stop(fleet_file, "web2", now=T), fleet_file)
    assert "web2 has no mitigation on" in message
    start(fleet_file, "web2", profile="web", reason="first", now=T)
    stop(fleet_file, "web2", now=T + 30 * HOUR)
    message = refused(lambda: stop(fleet_file, "web2", now=T + 31 * HOUR), fleet_file)
    assert "web2 has no mitigation on" in message


def test_the_pro_customers_profile_applies_and_its_edge_rules_join_the_filter(
        fleet_file: Path) -> None:
    message = refused(lambda: start(fleet_file, "pro1", profile="web", reason="x", now=T),
                      fleet_file)
    assert "its customer chose profile 'strict'" in message
    done = start(fleet_file, "pro1", profile=None, reason="attack", now=T)
    assert (done.profile, done.profile_from) == ("strict", "pro option")
    fleet = load_fleet(fleet_file, today=T.date())
    pro1 = fleet.guest("pro1")
    assert pro1 is not None
    rules = guest_rules(fleet, pro1, T + HOUR)
    edge = [(r.action, r.protocol, r.attributes) for r in rules if "edge rule" in r.why]
    assert edge == [
        ("accept", "tcp", {"srcipaddr": "192.0.2.0", "srcipmask": "24", "dstportstart": "8443"}),
        ("drop", "tcp", {"dstportstart": "22"}),
    ]
    # In the customer's order, before the profile's accepts (22/tcp for strict), so its drop
    # of 22/tcp wins.
    profile = [r for r in rules if r.why == "mitigation: 22/tcp open"]
    assert profile and max(r.priority for r in rules if "edge rule" in r.why) < profile[0].priority
    assert not any("edge rule" in r.why for r in guest_rules(fleet, pro1, T - HOUR))
    # An operator may impose another profile, explicitly.
    other = fleet_file.with_name("other.yml")
    other.write_text(FLEET)
    forced = start(other, "pro1", profile="web", reason="x", now=T,
                   override_customer_profile=True)
    assert (forced.profile, forced.profile_from) == ("web", "operator")


def test_a_new_start_keeps_the_ended_one_for_the_sla_and_disputes(fleet_file: Path) -> None:
    start(fleet_file, "web2", profile="web", reason="first attack", now=T)
    stop(fleet_file, "web2", now=T + 30 * HOUR)  # 2 December 16:00
    second = T + 48 * HOUR  # 3 December 10:00
    start(fleet_file, "web2", profile="strict", reason="second attack", now=second)
    fleet = load_fleet(fleet_file, today=second.date())
    guest = fleet.guest("web2")
    assert guest is not None and guest.mitigation is not None
    assert (guest.mitigation.since, guest.mitigation.ends_at) == (second, None)
    assert [(m.since, m.ends_at, m.reason) for m in guest.past_mitigations] == [
        (T, T + 30 * HOUR, "first attack")]
    text = fleet_file.read_text()
    assert text.endswith("# A Pro customer: its own profile and edge rules (M28).\n"
                         + FLEET.split("edge rules (M28).\n", 1)[1])
    # The SLA report of December excludes both: 1 Dec 10:00 to 2 Dec 16:00, and 3 Dec 10:00 to
    # the end of the month (still on).
    month_start = to_ms(dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC))  # Paris midnight
    month_end = to_ms(dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.UTC))
    entry, = entries(fleet, month_start, month_end, ["web2"])
    mitigations = [(e.start, e.end) for e in entry.exclusions if "mitigation" in e.reason]
    assert mitigations == [(to_ms(T), to_ms(T + 30 * HOUR)), (to_ms(second), month_end)]


def test_the_command_line_refuses_an_early_stop_with_exit_1(
        fleet_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mitigation", "start", str(fleet_file), "web1", "--reason", "flood",
                 "--now", "2026-12-01T10:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "profile web (policy default)" in out and "from 2026-12-02T12:00:00Z on (26 h" in out
    before = fleet_file.read_bytes()
    assert main(["mitigation", "stop", str(fleet_file), "web1",
                 "--now", "2026-12-02T11:59:59Z"]) == 1
    err = capsys.readouterr().err
    assert "cannot be switched off before 2026-12-02T12:00:00Z" in err and "unchanged" in err
    assert fleet_file.read_bytes() == before
    assert main(["mitigation", "stop", str(fleet_file), "web1",
                 "--now", "2026-12-02T12:00:00Z"]) == 0
    assert "ends at 2026-12-02T12:00:00Z" in capsys.readouterr().out


def test_stop_in_the_example_fleet_adds_one_line(tmp_path: Path) -> None:
    """The example's managed guest under mitigation since 2026-11-22T21:40Z: vps-managed says
    26 h, so it may end from 2026-11-23T23:40Z on; the stop adds `ends_at` and nothing else."""
    path = tmp_path / "fleet.yml"
    original = (REPO / "inventories" / "example-production" / "fleet.yml").read_text()
    path.write_text(original)
    message = refused(lambda: stop(path, "g0003-api2",
                                   now=dt.datetime(2026, 11, 23, 23, 39, 59, tzinfo=dt.UTC)), path)
    assert "before 2026-11-23T23:40:00Z (26 h minimum of offer vps-managed" in message
    stop(path, "g0003-api2", now=dt.datetime(2026, 11, 23, 23, 40, tzinfo=dt.UTC))
    assert added_lines(original, path.read_text()) == ["      ends_at: 2026-11-23T23:40:00Z"]
    assert "    mitigation:  # M28: DDoS mitigation under way\n" in path.read_text()


def test_the_deploy_facts_give_the_offers_minimum(fleet_file: Path) -> None:
    before = load_fleet(fleet_file, today=T.date())
    start(fleet_file, "web1", profile="web", reason="attack", now=T)  # managed: 26 h
    start(fleet_file, "web2", profile="web", reason="attack", now=T)  # unmanaged: 24 h
    after = load_fleet(fleet_file, today=T.date())
    facts = {c.machine: (c.fact("minimum_hours"), c.fact("earliest_end"))
             for c in changes_between(before, after, now=T + HOUR)
             if c.kind is Kind.MITIGATION_STARTED}
    assert facts == {"web1": ("26", "2026-12-02T12:00:00Z"), "web2": ("24", "2026-12-02T10:00:00Z")}


def test_validate_refuses_a_pro_option_naming_an_unknown_profile(
    fleet_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(fleet_file)]) == 0
    fleet_file.write_text(FLEET.replace("mitigation_profile: strict", "mitigation_profile: gold"))
    assert main(["validate", str(fleet_file)]) != 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "pro.mitigation_profile" in text and "unknown mitigation profile 'gold'" in text


def test_validate_refuses_an_unknown_profile_on_a_dedicated_server(
    fleet_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet_file.write_text(FLEET.replace(
        "    delivered_on: 2026-11-06\n",
        "    delivered_on: 2026-11-06\n    pro:\n      mitigation_profile: gold\n"))
    assert main(["validate", str(fleet_file)]) != 0
    out = capsys.readouterr()
    assert "dedicated_servers[0].pro.mitigation_profile" in out.out + out.err
