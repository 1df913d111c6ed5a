"""The backup window planner against its model (issue 15 part 2): the store is bandwidth shared
max-min fairly by the uploads under way, an upload holds one of the store's connections; the plan
never has more uploads at once than the connections, starts every guest inside the window on a
whole minute, is its own simulation, ends within 10 % of the bandwidth bound when the
connections do not bind, and its chart draws every guest with its labels apart."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpsfleet import load_fleet
from vpsfleet.backup_night import Jitter, Run, Store, simulate
from vpsfleet.backup_plan import (
    Assumptions,
    StorePlan,
    jitter_night,
    plan_night,
    render_svg,
    simulate_plan,
    text_width,
    window_seconds,
)
from vpsfleet.environments import fleet_path
from vpsfleet.fleet import Fleet
from vpsfleet.schema import Plan

SVG = "{http://www.w3.org/2000/svg}"
GBIT = 1e9


@pytest.fixture(scope="module")
def lab() -> Fleet:
    return load_fleet(fleet_path("lab"))


def fleet_of(
    lab: Fleet,
    disks_gb: list[int],
    plan_mbps: list[int],
    *,
    connections: int,
    bandwidth: int,
    hours: int = 3,
) -> Fleet:
    """The lab fleet with one backed-up guest per disk size on the lab's first store (so
    configured), the window 00:00 to `hours`:00."""
    template = next(g for g in lab.guests if lab.backup_enabled(g))
    plans = [
        Plan(
            name=f"p{i}", vcpu=1, ram_mb=1024, disk_gb=d, monthly_quota_tb=10, throttle_mbps=1,
            bandwidth_mbps=plan_mbps[i % len(plan_mbps)],
        )
        for i, d in enumerate(disks_gb)
    ]  # fmt: skip
    guests = [
        template.model_copy(update={"name": f"g{i:03d}", "plan": f"p{i}", "ipv4": None})
        for i in range(len(disks_gb))
    ]
    store = lab.store_for(template)
    assert store is not None
    stores = [store.model_copy(update={"max_connections": connections, "bandwidth_mbps": bandwidth})]
    backup = lab.policy.backup
    window = backup.window.model_copy(update={"start": "00:00", "end": f"{hours:02d}:00"})
    policy = lab.policy.model_copy(update={"backup": backup.model_copy(update={"window": window})})
    return dataclasses.replace(lab, plans=plans, guests=guests, backup_stores=stores, policy=policy)


def uploads_at_once(plan: StorePlan) -> int:
    """The most uploads under way at any instant, from the slots' own upload intervals (an end
    frees its connection for an upload beginning at that very time)."""
    assert plan.night is not None
    edges = sorted(
        [(s.upload_s, 1) for s in plan.slots] + [(plan.night.ends[s.job.guest], -1) for s in plan.slots]
    )
    most = now = 0
    for _, change in edges:
        now += change
        most = max(most, now)
    return most


guests_st = st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=30)


@settings(max_examples=50, deadline=None)
@given(
    disks=guests_st,
    plan_mbps=st.lists(st.sampled_from([100, 250, 1000]), min_size=1, max_size=3),
    connections=st.integers(min_value=1, max_value=10),
    bandwidth=st.sampled_from([200, 1000, 2500, 10000]),
    local=st.sampled_from([20.0, 40.0, 300.0]),
    margin=st.sampled_from([0, 10, 30]),
)
def test_the_plan_holds_the_connection_limit_the_window_and_is_its_simulation(
    lab: Fleet,
    disks: list[int],
    plan_mbps: list[int],
    connections: int,
    bandwidth: int,
    local: float,
    margin: int,
) -> None:
    fleet = fleet_of(lab, disks, plan_mbps, connections=connections, bandwidth=bandwidth)
    assume = Assumptions(local_mb_per_s=local, margin_minutes=margin)
    night = plan_night(fleet, assume=assume)
    [plan] = night.stores
    window_s = window_seconds(night.window_start, night.window_end)
    assert sorted(s.job.guest for s in plan.slots + plan.late) == [g.name for g in fleet.guests]
    # Every start inside the window, on a whole minute (a timer); the hard stop is kept.
    for slot in plan.slots + plan.late:
        assert 0 <= slot.start_s < window_s and slot.start_s % 60 == 0
        assert "00:00" <= night.start_time(slot) < night.window_end
    assert all(s.end_s <= plan.usable_s for s in plan.slots)
    assert all(s.connection == -1 and s.end_s > plan.usable_s for s in plan.late)
    # Never more uploads at once than the store's connections; one upload per connection at
    # a time; each upload begins when its set is built (no session refused, none waited for).
    assert plan.night is not None
    assert uploads_at_once(plan) <= connections and plan.night.peak_uploading <= connections
    assert all(0 <= s.connection < connections for s in plan.slots)
    for connection in range(connections):
        mine = sorted((s for s in plan.slots if s.connection == connection), key=lambda s: s.upload_s)
        assert all(plan.night.ends[a.job.guest] <= b.upload_s for a, b in itertools.pairwise(mine))
    assert all(s.upload_s == s.start_s + s.job.produce_s for s in plan.slots)
    # The simulation of the starts alone, connections enforced, is the plan, to the float.
    again = simulate_plan(plan)
    assert again == plan.night
    assert again == simulate(plan.runs(), bandwidth)  # with no limit: nobody would have waited
    assert {s.job.guest: s.end_s for s in plan.slots} == {n: math.ceil(e) for n, e in again.ends.items()}
    # Without jitter, the jittered night is the plan's.
    still = jitter_night(plan, Jitter(0, 0, 0, samples=2))
    assert still.lateness_s == [0.0, 0.0] and max(still.waited_s) < 1e-6  # float rounding
    # Never more bandwidth than the store's, and every run at least as long as alone.
    assert all(used <= bandwidth * (1 + 1e-9) for _, used in again.usage)
    for slot in plan.slots:
        assert again.ends[slot.job.guest] >= slot.start_s + slot.job.alone_s * (1 - 1e-9)
    if plan.slots:
        assert plan.planned_end_s >= max(s.job.alone_s for s in plan.slots)


@settings(max_examples=40, deadline=None)
@given(
    disks=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=30),
    plan_mbps=st.lists(st.sampled_from([250, 1000]), min_size=1, max_size=2),
    bandwidth=st.sampled_from([1000, 2500, 10000]),
)
def test_within_ten_percent_of_the_bound_when_the_connections_do_not_bind(
    lab: Fleet, disks: list[int], plan_mbps: list[int], bandwidth: int
) -> None:
    """A connection per guest and a long window: the connections cannot bind, every guest fits,
    and the night ends within 10 % of the lower bound (the bandwidth bound, or the longest run
    alone), give or take the minute a start waits for its timer and, on nights of few guests,
    one upload: the bound lets the last sets upload all at once at the store's bandwidth, where
    two large sets built at the end share it (two 13 GB sets, 1 Gbit/s: 531 s against 428)."""
    fleet = fleet_of(lab, disks, plan_mbps, connections=len(disks), bandwidth=bandwidth, hours=23)
    [plan] = plan_night(fleet).stores
    assert plan.late == []
    longest_upload = max(s.job.upload_s for s in plan.slots)
    assert plan.planned_end_s <= 1.1 * plan.lower_bound_s + 60 + longest_upload


def long_tailed_fleet(
    lab: Fleet, guests: int, bandwidth: int, connections: int
) -> tuple[Fleet, dict[str, int]]:
    """`benchmarks/backup_plan.py`'s fleet: last-run sizes log-normal around 2 GB (seeded)."""
    rng = random.Random(500)
    fleet = fleet_of(lab, [80] * guests, [1000], connections=connections, bandwidth=bandwidth)
    metrics = {g.name: int(min(60e9, rng.lognormvariate(21.4, 1.1))) for g in fleet.guests}
    return fleet, metrics


def test_the_benchmark_night_ends_within_ten_percent_of_the_bandwidth_bound(lab: Fleet) -> None:
    """Issue 15: 500 guests on 2.5 Gbit/s and 16 connections lasted 1.65 times the bandwidth
    bound; the connections do not bind there (their bound is far lower)."""
    fleet, metrics = long_tailed_fleet(lab, 500, 2500, 16)
    [plan] = plan_night(fleet, metrics, dataclasses.replace(Assumptions(), growth=1.0)).stores
    assert plan.late == []
    assert plan.connection_bound_s < plan.bandwidth_bound_s
    assert plan.planned_end_s <= 1.1 * plan.bandwidth_bound_s
    assert uploads_at_once(plan) <= 16
    assert simulate_plan(plan) == plan.night


def test_the_plan_is_deterministic_whatever_the_file_order(lab: Fleet) -> None:
    fleet, metrics = long_tailed_fleet(lab, 60, 1000, 4)
    reordered = dataclasses.replace(fleet, guests=list(reversed(fleet.guests)))

    def starts(f: Fleet) -> list[tuple[str, str, int]]:
        night = plan_night(f, metrics)
        return [
            (s.job.guest, night.start_time(s), s.connection)
            for p in night.stores
            for s in sorted(p.slots + p.late, key=lambda s: s.job.guest)
        ]

    assert starts(fleet) == starts(fleet) == starts(reordered)


def test_an_overloaded_store_names_the_largest_guests_and_fits_the_most(lab: Fleet) -> None:
    # 100 Mbit/s for 170 minutes carries about 127 GB: the 10 small guests fit, the big ones not.
    fleet = fleet_of(lab, [400, 400, *[10] * 10], [1000], connections=2, bandwidth=100)
    night = plan_night(fleet)
    assert sorted(s.job.guest for s in night.late) == ["g000", "g001"]


# --- the simulation with jitter: a set built while every connection is taken waits ---------


def test_a_set_built_while_every_connection_is_taken_waits_for_one() -> None:
    runs = [Run(f"r{i}", 0, 10 * GBIT, 10 * i, 1000) for i in range(3)]
    free = simulate(runs, 500)
    assert free.peak_uploading == 3
    held = simulate(runs, 500, connections=2)
    assert held.peak_uploading == 2
    # r0 and r1 upload from 0 and 10 s; r2, built at 20 s, waits for the first to end.
    first = min(held.ends["r0"], held.ends["r1"])
    assert held.uploads["r2"] == first
    assert held.uploads["r2"] > free.uploads["r2"] == 20
    # Driven step by step or at once, the same night; predicting changes nothing.
    store = Store(500, connections=2)
    for run in runs:
        store.advance_to(run.start_s)
        store.add(run)
        store.rest_of_night()
    assert store.finish() == held


def test_a_refused_set_tries_again_after_a_back_off_that_doubles() -> None:
    # One connection, r0 uploading on it from 0 to 100 s.
    runs = [Run(f"r{i}", 0, 100 * GBIT, i, 1000) for i in range(3)]
    night = simulate(runs, 1000, connections=1, retry_s=30, retry_max_s=80)
    assert night.peak_uploading == 1
    # Each attempt builds its set anew (1 s for r1, 2 s for r2) before it connects. r1: built
    # and refused at 1 s; again at 31, refused at 32; again at 92 (back-off 60), refused at 93;
    # again at 173 (80 at most), built at 174 after r0 ended (100): uploads until 274. r2: refused
    # at 2, 34, 96, 178 (r1 uploading), 260; built at 342: uploads until 442.
    assert night.uploads == {"r0": 0.0, "r1": 174.0, "r2": 342.0}
    assert night.ends["r2"] == pytest.approx(442.0) and night.failed == ()
    # With 3 attempts a night at most, both are refused at their third and fail the night.
    limited = simulate(runs, 1000, connections=1, retry_s=30, retry_max_s=80, attempts=3)
    assert limited.failed == ("r1", "r2") and set(limited.ends) == {"r0"}


def test_jitter_gives_the_last_end_at_the_95th_percentile_seeded(lab: Fleet) -> None:
    fleet, metrics = long_tailed_fleet(lab, 40, 1000, 4)
    [plan] = plan_night(fleet, metrics).stores
    spread = Jitter(0.2, 0.2, 0.1, samples=40, seed=7)
    first, second = jitter_night(plan, spread), jitter_night(plan, spread)
    assert first == second
    assert first.last_end_s == sorted(first.last_end_s) and len(first.last_end_s) == 40
    assert first.last_end_p95_s == first.planned_end_s + first.lateness_p95_s
    assert first.waited_p95_s >= 0


# --- the chart -----------------------------------------------------------------------------


def label_box(root: ET.Element, label: str) -> tuple[float, float, float, float]:
    [text] = [t for t in root.iter(f"{SVG}text") if t.text == label]
    size = float(text.get("font-size", "11"))
    width = text_width(label, size)
    x, y = float(text.get("x", "0")), float(text.get("y", "0"))
    anchor = text.get("text-anchor", "start")
    left = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
    return left, y - size, left + width, y


@pytest.mark.parametrize("margin", [0, 1, 10, 60])
def test_hard_stop_and_end_labels_never_overlap(lab: Fleet, margin: int) -> None:
    fleet = fleet_of(lab, [400, 40, 40, 4000], [1000], connections=2, bandwidth=1000)
    root = ET.fromstring(render_svg(plan_night(fleet, assume=Assumptions(margin_minutes=margin))))
    stop, end = label_box(root, "hard stop"), label_box(root, "end")
    assert stop[2] <= end[0]  # "hard stop" wholly left of "end"
    lines = {
        line.get("stroke"): float(line.get("x1", "0"))
        for line in root.iter(f"{SVG}line")
        if line.get("stroke") in ("#c00", "#e80")
    }
    assert stop[2] <= lines["#e80"] <= lines["#c00"] <= end[0]  # each label beside its line


def test_the_chart_draws_every_guest_and_the_store_bandwidth(lab: Fleet) -> None:
    fleet = fleet_of(lab, [2000, 2000, 30, 30, 30, 3], [250], connections=2, bandwidth=500)
    night = plan_night(fleet)
    assert len(night.late) >= 2
    root = ET.fromstring(render_svg(night))
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("data-guest")]
    assert sorted(r.get("data-guest", "") for r in bars) == [g.name for g in fleet.guests]
    late_rows = [float(r.get("y", "0")) for r in bars if r.get("fill") == "#d33"]
    assert len(late_rows) == len(night.late) == len(set(late_rows))
    [area] = list(root.iter(f"{SVG}polygon"))
    assert area.get("data-store") == night.stores[0].store.name
    # The area's top never rises above the band: at most the store's bandwidth.
    assert night.stores[0].night is not None
    assert max(used for _, used in night.stores[0].night.usage) <= 500 * (1 + 1e-9)
