"""The backup window planner: every guest sharing a store finishes inside 00:00-03:00 within the
store's bandwidth and connections, or is named as not fitting; nothing is random."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpsfleet import load_fleet
from vpsfleet.backup_plan import (
    Assumptions,
    StorePlan,
    backed_up_guests,
    parse_metrics,
    plan_night,
    render_svg,
    simulate_plan,
    text_width,
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
    # Never more uploads at once than the store's connections (a run holds one from its set
    # built to its last byte); each connection carries one upload at a time.
    assert plan.night is not None
    ends = plan.night.ends
    for slot in plan.slots:
        uploading = [s for s in plan.slots if s.upload_s <= slot.upload_s < ends[s.job.guest]]
        assert len(uploading) <= connections
        assert slot.upload_s == plan.night.uploads[slot.job.guest]
        assert slot.upload_s == slot.start_s + slot.job.produce_s  # no wait for a connection
    for connection in range(connections):
        mine = sorted((s for s in plan.slots if s.connection == connection), key=lambda s: s.upload_s)
        assert all(ends[a.job.guest] <= b.upload_s for a, b in itertools.pairwise(mine))
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


def test_cli_prints_the_plan_and_writes_the_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "night.svg"
    assert main(["backup-plan", str(LAB), "--json", "--svg", str(chart)]) == 0
    out = json.loads(capsys.readouterr().out)
    fleet = load_fleet(LAB)
    assert set(out["guests"]) == {g.name for g in fleet.guests if fleet.backup_enabled(g)}
    assert all(g["fits"] and g["start"] >= "00:00" for g in out["guests"].values())
    assert chart.read_text().startswith("<svg")


def test_cli_fails_when_a_guest_does_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = tmp_path / "metrics.json"
    guest: Guest = next(g for g in load_fleet(LAB).guests if load_fleet(LAB).backup_enabled(g))
    metrics.write_text(json.dumps({guest.name: 5 * 10**12}))  # 5 TB: not in one night
    assert main(["backup-plan", str(LAB), "--metrics", str(metrics)]) == 1
    assert f"not fitting in the window: {guest.name}" in capsys.readouterr().out


def test_assumptions_are_explicit() -> None:
    assert Assumptions().margin_minutes > 0  # the agent's hard stop precedes the window's end


# --- issue 15: the shared-bandwidth model -----------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def fleet_of(disks: list[int], plan_mbps: list[int], connections: int, bandwidth: int) -> Fleet:
    fleet = with_guests(load_fleet(LAB), disks, max_connections=connections,
                        bandwidth_mbps=bandwidth)  # fmt: skip
    plans = [
        p.model_copy(update={"bandwidth_mbps": plan_mbps[i % len(plan_mbps)]})
        for i, p in enumerate(fleet.plans)
    ]
    return dataclasses.replace(fleet, plans=plans)


def long_night(fleet: Fleet) -> Fleet:
    """The window 00:00-23:00: every guest of these tests fits."""
    backup = fleet.policy.backup
    window = backup.window.model_copy(update={"start": "00:00", "end": "23:00"})
    policy = fleet.policy.model_copy(update={"backup": backup.model_copy(update={"window": window})})
    return dataclasses.replace(fleet, policy=policy)


def transfer_bound(plan: StorePlan) -> float:
    """Over the guests that fit: the store idles until a first set is built, then carries
    every byte at most at its bandwidth; and no run beats itself alone on the store."""
    jobs = [s.job for s in plan.slots]
    transfer = sum(j.expected_bytes for j in jobs) * 8 / (plan.store.bandwidth_mbps * 1e6)
    return max(min(j.produce_s for j in jobs) + transfer, max(j.alone_s for j in jobs))


@settings(max_examples=60, deadline=None)
@given(
    disks=st.lists(st.integers(min_value=1, max_value=800), min_size=1, max_size=40),
    plan_mbps=st.lists(st.sampled_from([100, 200, 1000]), min_size=1, max_size=3),
    connections=st.integers(min_value=1, max_value=12),
    bandwidth=st.sampled_from([100, 500, 1000, 2500, 10000]),
    local=st.sampled_from([10.0, 40.0, 200.0]),
)
def test_plan_and_simulation_agree_within_the_store_limits(
    disks: list[int], plan_mbps: list[int], connections: int, bandwidth: int, local: float
) -> None:
    fleet = fleet_of(disks, plan_mbps, connections, bandwidth)
    night = plan_night(fleet, assume=Assumptions(local_mb_per_s=local))
    [plan] = night.stores
    window_s = window_seconds(night.window_start, night.window_end)
    assert sorted(s.job.guest for s in plan.slots + plan.late) == sorted(g.name for g in fleet.guests)
    # Every start inside the window, on a whole minute; the late ones hold no connection.
    for slot in plan.slots + plan.late:
        assert 0 <= slot.start_s < window_s and slot.start_s % 60 == 0
    assert all(s.connection == -1 and s.end_s > plan.usable_s for s in plan.late)
    # The simulation of the plan's starts alone gives exactly the plan's ends.
    assert plan.night is not None
    again = simulate_plan(plan)
    assert again == plan.night
    assert {s.job.guest: s.end_s for s in plan.slots} == {
        name: math.ceil(end) for name, end in again.ends.items()
    }
    assert all(s.end_s <= plan.usable_s for s in plan.slots)
    # Never more uploads at once than the store's connections, at any instant of the simulation.
    edges = sorted(
        [(again.uploads[s.job.guest], 1) for s in plan.slots]
        + [(again.ends[s.job.guest], -1) for s in plan.slots],
        key=lambda e: (e[0], e[1]),  # an end frees its connection before an upload at that time
    )
    uploading = 0
    for _, change in edges:
        uploading += change
        assert uploading <= connections
    assert again.peak_uploading <= connections
    # Nor more bandwidth than the store's.
    assert all(used <= bandwidth * (1 + 1e-9) for _, used in again.usage)
    if plan.slots:
        assert again.makespan_s >= transfer_bound(plan) * (1 - 1e-9)


@settings(max_examples=60, deadline=None)
@given(
    disks=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30),
    plan_mbps=st.lists(st.sampled_from([200, 1000]), min_size=1, max_size=2),
    bandwidth=st.sampled_from([1000, 2500, 10000]),
)
def test_makespan_near_the_bandwidth_bound_when_connections_do_not_bind(
    disks: list[int], plan_mbps: list[int], bandwidth: int
) -> None:
    """With a connection per guest, the connections cannot bind: the night ends within 10 % of
    the bandwidth bound B (first set built, then every byte at the store's bandwidth; or the
    longest run alone), plus the tail of the longest production (a run cannot upload before its
    set is built, and the last ones built upload with the store partly idle), plus the minute a
    start may wait for the timer: makespan <= 1.1 B + max(produce) + 60 s."""
    fleet = long_night(fleet_of(disks, plan_mbps, len(disks), bandwidth))
    night = plan_night(fleet)
    [plan] = night.stores
    assert plan.late == [] and plan.night is not None
    tail = max(s.job.produce_s for s in plan.slots)
    assert plan.night.makespan_s <= 1.1 * transfer_bound(plan) + tail + 60


def text_boxes(root: ET.Element) -> list[tuple[str, float, float, float, float]]:
    """Each label's box (left, top, right, bottom) from its position, anchor, font size and an
    estimate of its width (CHAR_EM of the font size per character)."""
    boxes = []
    for text in root.iter(f"{SVG}text"):
        size = float(text.get("font-size", "11"))
        width = text_width(text.text or "", size)
        x, y = float(text.get("x", "0")), float(text.get("y", "0"))
        anchor = text.get("text-anchor", "start")
        left = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
        boxes.append((text.text or "", left, y - size, left + width, y))
    return boxes


def assert_apart(boxes: list[tuple[str, float, float, float, float]]) -> None:
    for a, b in itertools.combinations(boxes, 2):
        overlap = a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
        assert not overlap, f"labels {a[0]!r} and {b[0]!r} overlap"


def test_example_production_chart_draws_every_guest_and_keeps_labels_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15: the chart listed four guests that do not fit but drew one; "hard stop" and
    "end" overlapped."""
    chart = tmp_path / "night.svg"
    main(["backup-plan", "example-production", "--svg", str(chart)])
    out = capsys.readouterr().out
    fleet = load_fleet(fleet_path("example-production"))
    night = plan_night(fleet)
    root = ET.fromstring(chart.read_text())
    drawn = [r.get("data-guest", "") for r in root.iter(f"{SVG}rect") if r.get("data-guest")]
    assert sorted(drawn) == sorted(g.name for g in backed_up_guests(fleet))
    late = sorted(r.get("data-guest", "") for r in root.iter(f"{SVG}rect") if r.get("fill") == "#d33")
    assert late == sorted(s.job.guest for s in night.late)
    if night.late:
        assert "not fitting in the window: " + ", ".join(late) in out
    # Each guest that does not fit has its own row, its bar reaching past the hard stop.
    rows = [float(r.get("y", "0")) for r in root.iter(f"{SVG}rect") if r.get("fill") == "#d33"]
    assert len(set(rows)) == len(rows)
    boxes = text_boxes(root)
    assert {"hard stop", "end"} <= {b[0] for b in boxes}
    assert_apart(boxes)
    # The store's bandwidth over the night, one area per store.
    areas = [p.get("data-store") for p in root.iter(f"{SVG}polygon")]
    assert areas == [p.store.name for p in night.stores]


@settings(max_examples=15, deadline=None)
@given(
    disks=st.lists(st.integers(min_value=1, max_value=2000), min_size=1, max_size=60),
    connections=st.integers(min_value=1, max_value=6),
    bandwidth=st.sampled_from([100, 1000]),
)
def test_crowded_charts_keep_every_guest_and_no_label_overlaps(
    disks: list[int], connections: int, bandwidth: int
) -> None:
    fleet = with_guests(load_fleet(LAB), disks, max_connections=connections,
                        bandwidth_mbps=bandwidth)  # fmt: skip
    root = ET.fromstring(render_svg(plan_night(fleet)))
    drawn = [r.get("data-guest", "") for r in root.iter(f"{SVG}rect") if r.get("data-guest")]
    assert sorted(drawn) == sorted(g.name for g in fleet.guests)
    assert_apart(text_boxes(root))


def test_cli_gives_the_jitter_of_the_night(capsys: pytest.CaptureFixture[str]) -> None:
    main(["backup-plan", str(LAB), "--json", "--jitter", "20"])
    stores = json.loads(capsys.readouterr().out)["stores"]
    for figures in stores.values():
        assert figures["jitter"]["samples"] == 20
        assert figures["makespan_seconds"] >= figures["bandwidth_bound_seconds"]
        assert figures["jitter"]["last_end_p95_seconds"] >= 0
        assert figures["jitter"]["past_window_end_p95_seconds"] == max(
            0, figures["jitter"]["last_end_p95_seconds"] - 3 * 3600
        )
        assert set(figures["jitter"]) == {
            "samples",
            "last_end_p95_seconds",
            "past_window_end_p95_seconds",
            "waited_for_a_connection_p95_seconds",
            "nights_with_a_guest_refused_at_every_attempt",
            "last_end_late_p95_seconds",
            "worst_guest_late_p95_seconds",
            "nights_past_hard_stop",
            "peak_runs_p95",
        }
