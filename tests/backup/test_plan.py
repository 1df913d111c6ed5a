"""The backup window planner: every guest sharing a store finishes inside 00:00-03:00 within the
store's bandwidth and connections, or is named as not fitting; nothing is random."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpsfleet import load_fleet
from vpsfleet.backup_plan import (
    Assumptions,
    parse_metrics,
    plan_night,
    render_svg,
    window_seconds,
)
from vpsfleet.cli import main
from vpsfleet.environments import fleet_path
from vpsfleet.fleet import Fleet
from vpsfleet.schema import Guest, GuestState, Plan

LAB = fleet_path("lab")


@pytest.fixture(scope="module")
def lab() -> Fleet:
    return load_fleet(LAB)


def with_guests(fleet: Fleet, disks_gb: list[int], **store_changes: int) -> Fleet:
    """The lab fleet with one backed-up guest per disk size, all on the lab's store."""
    template = next(g for g in fleet.guests if fleet.backup_enabled(g))
    plans = [
        Plan(
            name=f"p{i}", vcpu=1, ram_mb=1024, disk_gb=d, bandwidth_mbps=1000,
            monthly_quota_tb=10, throttle_mbps=1,
        )
        for i, d in enumerate(disks_gb)
    ]  # fmt: skip
    guests = [
        template.model_copy(update={"name": f"g{i:03d}", "plan": f"p{i}", "ipv4": None})
        for i in range(len(disks_gb))
    ]
    stores = [s.model_copy(update=store_changes) for s in fleet.backup_stores]
    return dataclasses.replace(fleet, plans=plans, guests=guests, backup_stores=stores)


def test_lab_guests_all_fit_and_start_inside_the_window(lab: Fleet) -> None:
    night = plan_night(lab)
    planned = {s.job.guest for p in night.stores for s in p.slots}
    assert planned == {g.name for g in lab.guests if lab.backup_enabled(g)}
    assert night.late == [] and night.without_store == []
    for plan in night.stores:
        for slot in plan.slots:
            assert "00:00" <= night.start_time(slot) < "03:00"
            assert slot.end_s <= plan.usable_s


def test_terminated_and_optedout_guests_are_not_planned(lab: Fleet) -> None:
    first, second, *rest = [g for g in lab.guests if lab.backup_enabled(g)]
    changed = [
        first.model_copy(update={"state": GuestState.TERMINATED, "terminated_on": dt.date.today()}),
        second.model_copy(update={"backup": second.backup.model_copy(update={"enabled": False})}),
        *rest,
    ]
    others = [g for g in lab.guests if not lab.backup_enabled(g)]
    night = plan_night(dataclasses.replace(lab, guests=changed + others))
    planned = {s.job.guest for p in night.stores for s in p.slots}
    assert planned == {g.name for g in rest}


def test_guests_that_cannot_fit_are_named_and_do_not_delay_the_others(lab: Fleet) -> None:
    # 1 connection of 100 Mbit/s: 3 hours carry about 130 GB at most.
    fleet = with_guests(lab, [2000, 10, 10, 10], max_connections=1, bandwidth_mbps=100)
    night = plan_night(fleet)
    assert [s.job.guest for s in night.late] == ["g000"]
    assert sorted(s.job.guest for p in night.stores for s in p.slots) == ["g001", "g002", "g003"]
    starts = sorted(s.start_s for p in night.stores for s in p.slots)
    assert starts[0] == 0  # the big one did not hold the only connection


def test_last_run_bytes_replace_the_plan_estimate(lab: Fleet) -> None:
    fleet = with_guests(lab, [400, 400])
    night = plan_night(fleet, metrics={"g000": 2_000_000_000})
    jobs = {s.job.guest: s.job for p in night.stores for s in p.slots + p.late}
    assert jobs["g000"].from_metrics and jobs["g000"].expected_bytes == 2_200_000_000  # +10 %
    assert not jobs["g001"].from_metrics
    assert jobs["g001"].expected_bytes == 400 * 10**9 * 0.5 * 0.7


def test_plan_is_deterministic_and_ignores_file_order(lab: Fleet) -> None:
    fleet = with_guests(lab, [30, 50, 20, 50, 80, 10, 40], max_connections=3)
    reordered = dataclasses.replace(fleet, guests=list(reversed(fleet.guests)))

    def starts(f: Fleet) -> dict[str, str]:
        night = plan_night(f)
        return {s.job.guest: night.start_time(s) for p in night.stores for s in p.slots + p.late}

    assert starts(fleet) == starts(fleet) == starts(reordered)


@settings(max_examples=40, deadline=None)
@given(
    disks=st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=40),
    connections=st.integers(min_value=1, max_value=8),
    bandwidth=st.sampled_from([100, 1000, 10000]),
)
def test_store_limits_hold_and_makespan_respects_the_lower_bound(
    disks: list[int], connections: int, bandwidth: int
) -> None:
    fleet = with_guests(load_fleet(LAB), disks, max_connections=connections,
                        bandwidth_mbps=bandwidth)  # fmt: skip
    night = plan_night(fleet)
    [plan] = night.stores
    assert len(plan.slots) + len(plan.late) == len(disks)
    # Never more runs at once than the store's connections; each connection runs one at a time.
    for slot in plan.slots:
        running = [s for s in plan.slots if s.start_s <= slot.start_s < s.end_s]
        assert len(running) <= connections
    for connection in range(connections):
        mine = sorted((s for s in plan.slots if s.connection == connection), key=lambda s: s.start_s)
        assert all(a.end_s <= b.start_s for a, b in itertools.pairwise(mine))
    assert all(s.end_s <= plan.usable_s for s in plan.slots)
    assert all(s.start_s % 60 == 0 for s in plan.slots)
    if plan.slots:
        scheduled = max(s.end_s for s in plan.slots)
        assert scheduled >= max(s.job.seconds for s in plan.slots)


def test_window_across_midnight_is_measured_forwards() -> None:
    assert window_seconds("00:00", "03:00") == 3 * 3600
    assert window_seconds("23:00", "02:00") == 3 * 3600


def test_metrics_file_shapes() -> None:
    assert parse_metrics({"web1": 5}) == {"web1": 5}
    assert parse_metrics({"guests": {"web1": {"bytes": 7}}}) == {"web1": 7}
    with pytest.raises(ValueError, match="web1"):
        parse_metrics({"web1": "big"})


def test_svg_chart_is_well_formed_and_shows_every_guest(lab: Fleet) -> None:
    fleet = with_guests(lab, [2000, 10, 10], max_connections=2, bandwidth_mbps=100)
    night = plan_night(fleet)
    root = ET.fromstring(render_svg(night))
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"g000", "g001", "g002", "hard stop", "end"} <= texts
    fills = [r.get("fill") for r in root.iter("{http://www.w3.org/2000/svg}rect")]
    assert fills.count("#d33") == 1  # the guest that does not fit, in red


def test_cli_prints_the_plan_and_writes_the_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "night.svg"
    assert main(["backup-plan", str(LAB), "--json", "--svg", str(chart)]) == 0
    out = json.loads(capsys.readouterr().out)
    fleet = load_fleet(LAB)
    assert set(out["guests"]) == {g.name for g in fleet.guests if fleet.backup_enabled(g)}
    assert all(g["fits"] and g["start"] >= "00:00" for g in out["guests"].values())
    assert chart.read_text().startswith("<svg")


def test_cli_fails_when_a_guest_does_not_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "metrics.json"
    guest: Guest = next(g for g in load_fleet(LAB).guests if load_fleet(LAB).backup_enabled(g))
    metrics.write_text(json.dumps({guest.name: 5 * 10**12}))  # 5 TB: not in one night
    assert main(["backup-plan", str(LAB), "--metrics", str(metrics)]) == 1
    assert f"not fitting in the window: {guest.name}" in capsys.readouterr().out


def test_assumptions_are_explicit() -> None:
    assert Assumptions().margin_minutes > 0  # the agent's hard stop precedes the window's end
