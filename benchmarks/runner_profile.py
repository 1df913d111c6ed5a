"""Where a playbook run spent its time, from ansible-runner's artifacts (no callback needed).

    .venv/bin/python benchmarks/runner_profile.py /var/lib/vpsfleet-lab/runner/artifacts/ID [--top 20]

Each task's wall time runs from its start event to the next task's start (the last one to the
recap), as ansible.posix.profile_tasks counts it; tasks are summed per role ("facts": Gathering
Facts, "(play tasks)": tasks of the playbook itself). That reading holds for the linear strategy
only: under strategy free the hosts' tasks interleave. The per-host figures hold for both: each
host's run of a task from its runner_on_start to its result ("host-seconds"), and the module
runs (a loop's items each count; a skipped task or item does not). Prints figures; asserts
nothing. Used for docs/benchmarks-lab.md (issue 15 part 3).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

TASK_STARTS = ("playbook_on_task_start", "playbook_on_handler_task_start")
HOST_ENDS = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")
ITEM_RUNS = ("runner_item_on_ok", "runner_item_on_failed")


@dataclass(frozen=True)
class TaskTime:
    seconds: float
    role: str
    task: str
    play: str


@dataclass(frozen=True)
class HostWork:
    """The hosts' own work, summed per role: strategy-independent."""

    seconds: dict[str, float]  # host-seconds per role
    module_runs: dict[str, int]  # module runs per role
    per_host: dict[str, float]  # host-seconds per host


@dataclass(frozen=True)
class Profile:
    total: float
    tasks: tuple[TaskTime, ...]
    changed: dict[str, int]
    work: HostWork

    def by_role(self) -> dict[str, float]:
        sums: dict[str, float] = defaultdict(float)
        for t in self.tasks:
            key = "facts" if t.task == "Gathering Facts" else (t.role or "(play tasks)")
            sums[key] += t.seconds
        return dict(sorted(sums.items(), key=lambda kv: -kv[1]))


def _when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["created"])


def _role_of(data: dict[str, Any]) -> str:
    if data.get("task") == "Gathering Facts":
        return "facts"
    return str(data.get("role") or "") or "(play tasks)"


def host_work(events: list[dict[str, Any]]) -> HostWork:
    """Each host's run of each task, from its start to its result, and the module runs."""
    started: dict[tuple[str, str], dict[str, Any]] = {}
    items: dict[tuple[str, str], int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    runs: dict[str, int] = defaultdict(int)
    per_host: dict[str, float] = defaultdict(float)
    for e in sorted(events, key=lambda e: int(e["counter"])):
        data = e.get("event_data", {})
        key = (str(data.get("host", "")), str(data.get("task_uuid", "")))
        if e["event"] == "runner_on_start":
            started[key] = e
        elif e["event"] in ITEM_RUNS:
            items[key] += 1
        elif e["event"] in HOST_ENDS and key in started:
            role = _role_of(data)
            took = (_when(e) - _when(started.pop(key))).total_seconds()
            seconds[role] += took
            per_host[key[0]] += took
            if e["event"] != "runner_on_skipped":
                runs[role] += items.pop(key, 0) or 1
    return HostWork(
        dict(sorted(seconds.items(), key=lambda kv: -kv[1])),
        dict(runs),
        dict(sorted(per_host.items(), key=lambda kv: -kv[1])),
    )


def profile(events: list[dict[str, Any]]) -> Profile:
    """The run's profile from its job events (any order)."""
    events = sorted(events, key=lambda e: int(e["counter"]))
    starts = [e for e in events if e["event"] in TASK_STARTS]
    stats = [e for e in events if e["event"] == "playbook_on_stats"]
    begin = [e for e in events if e["event"] == "playbook_on_start"]
    ends = [*starts[1:], *stats[-1:]]
    tasks = tuple(
        TaskTime(
            (_when(b) - _when(a)).total_seconds(),
            str(a["event_data"].get("role", "")),
            str(a["event_data"].get("task", "")),
            str(a["event_data"].get("play", "")),
        )
        for a, b in zip(starts, ends, strict=False)
    )
    total = (_when(stats[-1]) - _when(begin[0])).total_seconds() if stats and begin else 0.0
    changed = (
        {str(h): int(n) for h, n in (stats[-1]["event_data"].get("changed") or {}).items()} if stats else {}
    )
    return Profile(total, tasks, changed, host_work(events))


def read_events(artifact_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in (artifact_dir / "job_events").glob("*.json")]


def report(p: Profile, top: int) -> list[str]:
    """The profile as printed: totals, time by role, the hosts' own work, the longest tasks."""
    w = p.work
    lines = [
        f"playbook {p.total:.1f} s, {len(p.tasks)} task starts, changed {sum(p.changed.values())}",
        "by role (s): " + ", ".join(f"{k} {v:.1f}" for k, v in p.by_role().items()),
        f"hosts' own work: {sum(w.seconds.values()):.1f} host-seconds, "
        f"{sum(w.module_runs.values())} module runs",
        "  by role (host-s/runs): "
        + ", ".join(f"{k} {v:.1f}/{w.module_runs.get(k, 0)}" for k, v in w.seconds.items()),
        "  by host (host-s): " + ", ".join(f"{k} {v:.1f}" for k, v in w.per_host.items()),
    ]
    for t in sorted(p.tasks, key=lambda t: -t.seconds)[:top]:
        lines.append(f"{t.seconds:7.2f}  {t.role + ' : ' if t.role else ''}{t.task}   [{t.play}]")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("artifact_dir", type=Path, help="one run's folder under the runner's artifacts/")
    parser.add_argument("--top", type=int, default=20, help="how many of the longest tasks to list")
    args = parser.parse_args(argv)
    print("\n".join(report(profile(read_events(args.artifact_dir)), args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
