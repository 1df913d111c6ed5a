"""`vpsfleet backup-plan ENV`: each guest's backup start time, and who does not fit."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from vpsfleet.backup_night import JitterResult
from vpsfleet.backup_plan import (
    Assumptions,
    NightPlan,
    clock,
    jitter_night,
    minutes_of,
    parse_metrics,
    plan_night,
    render_svg,
)
from vpsfleet.environments import display_path, fleet_path
from vpsfleet.loader import FleetInvalid, load_fleet


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backup-plan",
        help="start times inside the backup window so each store's guests finish in it",
    )
    parser.add_argument("env", help="environment name (inventories/ENV/fleet.yml) or a path")
    parser.add_argument(
        "--metrics", type=Path, metavar="FILE",
        help="JSON of last-run bytes per guest ({\"web1\": 123, ...}); else the plan's disk",
    )  # fmt: skip
    defaults = Assumptions()
    parser.add_argument("--fill-ratio", type=float, default=defaults.fill_ratio)
    parser.add_argument("--compression-ratio", type=float, default=defaults.compression_ratio)
    parser.add_argument("--local-mb-per-s", type=float, default=defaults.local_mb_per_s)
    parser.add_argument("--margin-minutes", type=int, default=defaults.margin_minutes)
    parser.add_argument(
        "--jitter", type=int, default=0, metavar="N",
        help="also run the night N times with sizes and rates drawn around the expected ones "
             f"(seeded; spreads in Assumptions.jitter) and give the last guest's 95th-percentile "
             f"lateness (e.g. {defaults.jitter.samples})",
    )  # fmt: skip
    parser.add_argument("--svg", type=Path, metavar="FILE", help="write the night's chart")
    parser.add_argument("--json", action="store_true", help="machine-readable plan on stdout")
    parser.set_defaults(run=run)


def as_json(night: NightPlan, jitters: dict[str, JitterResult] | None = None) -> dict[str, Any]:
    guests: dict[str, Any] = {}
    for plan in night.stores:
        for slot in plan.slots + plan.late:
            guests[slot.job.guest] = {
                "store": plan.store.name,
                "start": night.start_time(slot),
                "expected_seconds": slot.end_s - slot.start_s,
                "alone_seconds": slot.job.seconds,
                "expected_bytes": slot.job.expected_bytes,
                "from_metrics": slot.job.from_metrics,
                "fits": slot not in plan.late,
            }
    return {
        "window": {"start": night.window_start, "end": night.window_end},
        "guests": dict(sorted(guests.items())),
        "stores": {
            p.store.name: {
                "guests": len(p.slots) + len(p.late),
                "total_bytes": p.total_bytes,
                "makespan_seconds": p.makespan_s,
                "lower_bound_seconds": p.lower_bound_s,
                "bandwidth_bound_seconds": p.bandwidth_bound_s,
                "connection_bound_seconds": p.connection_bound_s,
                "planned_end_seconds": p.planned_end_s,
                **(
                    {"jitter": jitter_json(jitters[p.store.name], p.window_s)}
                    if jitters and p.store.name in jitters
                    else {}
                ),
            }
            for p in night.stores
        },
        "without_store": night.without_store,
    }


def jitter_json(result: JitterResult, window_s: int) -> dict[str, Any]:
    return {
        "samples": result.samples,
        "last_end_p95_seconds": round(result.last_end_p95_s),
        "past_window_end_p95_seconds": round(max(0.0, result.last_end_p95_s - window_s)),
        "waited_for_a_connection_p95_seconds": round(result.waited_p95_s),
        "nights_with_a_guest_refused_at_every_attempt": result.nights_with_failures,
        "last_end_late_p95_seconds": round(result.lateness_p95_s),
        "worst_guest_late_p95_seconds": round(result.worst_delay_p95_s),
        "nights_past_hard_stop": result.past_deadline,
        "peak_runs_p95": result.peak_running_p95,
    }


def render_text(night: NightPlan, jitters: dict[str, JitterResult] | None = None) -> str:
    lines = [f"backup window {night.window_start}-{night.window_end}"]
    for plan in night.stores:
        lines.append(
            f"\n{plan.store.name}: {len(plan.slots) + len(plan.late)} guests, "
            f"{plan.total_bytes / 1e9:.1f} GB, {plan.store.bandwidth_mbps} Mbit/s, "
            f"{plan.store.max_connections} connections; ends after {plan.makespan_s // 60} min "
            f"(bounds: bandwidth {plan.bandwidth_bound_s // 60} min, connections "
            f"{plan.connection_bound_s // 60} min)"
        )
        if jitters and plan.store.name in jitters:
            result = jitters[plan.store.name]
            last_end = clock(
                minutes_of(night.window_start) + math.ceil(result.last_end_p95_s / 60)
            )
            past = max(0.0, result.last_end_p95_s - plan.window_s)
            lines.append(
                f"  with jitter ({result.samples} nights, 95th percentiles): last end {last_end} "
                f"({past / 60:.0f} min past the window's end), "
                f"{result.lateness_p95_s / 60:+.0f} min against the plan, a guest up to "
                f"{result.worst_delay_p95_s / 60:+.0f} min against its own, up to "
                f"{result.peak_running_p95} runs at once, an upload up to "
                f"{result.waited_p95_s / 60:.0f} min late for a session (refused, retried); past "
                f"the hard stop in {result.past_deadline} nights, a guest refused at every "
                f"attempt in {result.nights_with_failures}"
            )
        for slot in plan.slots + plan.late:
            source = "last run" if slot.job.from_metrics else "plan disk"
            late = slot in plan.late
            verdict = "DOES NOT FIT (needs this long even alone)" if late else "ok"
            lines.append(
                f"  {night.start_time(slot)}  {slot.job.guest:<24} "
                f"{slot.job.expected_bytes / 1e9:7.1f} GB ({source:<9}) "
                f"{(slot.end_s - slot.start_s) // 60:4d} min  {verdict}"
            )
    if night.late:
        names = ", ".join(sorted(s.job.guest for s in night.late))
        lines.append(f"\nnot fitting in the window: {names}")
    if night.without_store:
        lines.append(f"\nbackup enabled but no store serves them: {', '.join(night.without_store)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    path = fleet_path(args.env)
    try:
        fleet = load_fleet(path)
    except FleetInvalid as err:
        raise FleetInvalid(display_path(path), err.problems) from None
    metrics: dict[str, int] = {}
    if args.metrics:
        try:
            metrics = parse_metrics(json.loads(args.metrics.read_text(encoding="utf-8")))
        except (OSError, ValueError) as err:
            print(f"vpsfleet: {args.metrics}: {err}")
            return 2
    assume = Assumptions(
        fill_ratio=args.fill_ratio,
        compression_ratio=args.compression_ratio,
        local_mb_per_s=args.local_mb_per_s,
        margin_minutes=args.margin_minutes,
    )
    night = plan_night(fleet, metrics, assume)
    jitters = {}
    if args.jitter > 0:
        spread = dataclasses.replace(assume.jitter, samples=args.jitter)
        jitters = {p.store.name: jitter_night(p, spread) for p in night.stores if p.slots}
    if args.json:
        print(json.dumps(as_json(night, jitters), indent=2))
    else:
        print(render_text(night, jitters))
    if args.svg:
        args.svg.write_text(render_svg(night), encoding="utf-8")
    return 1 if night.late or night.without_store else 0
