"""The night's backup plan: a start time for each guest inside the window (M18) so that the
guests sharing a store finish before the window ends, given their expected sizes and the store's
bandwidth and connection limit. Deterministic: the same fleet gives the same plan.

Model (issue 15; simulated in `vpsfleet.backup_night`):
- a guest's run first builds its set locally (tar + compression at `local_mb_per_s`), which takes
  no store bandwidth, then uploads it; the uploads under way share the store's bandwidth max-min
  fairly (equal shares, each at most its plan's bandwidth, the rest shared by the others); a run
  ends when its last bit is through;
- an upload holds one of the store's `max_connections` from its first byte to its last (the
  agent connects once its set is built): the plan never has more uploads at once;
- its size is the last run's bytes when known (`metrics`, times `growth`), else the plan's disk
  times `fill_ratio` (how full a disk is) times `compression_ratio`.

Scheduling (`schedule_store`), at each whole minute (what a systemd timer expresses): the waiting
runs, longest first (ties by guest name), each started now if the simulation of the night with
it (the runs already started, nothing else) ends every run before the window minus
`margin_minutes`, never has more uploads at once than the store's connections, and, while its
own upload runs, asks the store for at most `oversubscription` times its bandwidth (the sum of
the uploads' ceilings): enough uploads to fill the store, few enough that each runs near its
ceiling, so that the long runs (started first, their sets built while the small ones upload) end
early and the small ones fill the store to the end. A run refused now is tried again the next
minute. The oversubscriptions of `OVERSUBSCRIPTION_TRIED` are tried in turn and the plan that
ends first is kept (ties: the first). When some guests cannot fit that way, the smallest first
are planned too, strictly in that order: more guests fit, the largest are named. The plan's
ends are the simulation's (`simulate_plan` gives them anew from the starts alone).

A guest that cannot end in time even alone on the store from the minute it could start is
reported as not fitting, with the time it would need at best; it holds no connection. Starts
follow the plan, not the night: when runs last longer than planned, a set built while the
store's sessions are all taken is refused and the agent tries again after its back-off;
`jitter_night` measures how late that makes the night.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vpsfleet.backup_night import (
    Jitter,
    JitterResult,
    Outcome,
    Run,
    Store,
    jitter,
    most_demand,
    most_sessions,
    sessions_at,
    simulate,
)
from vpsfleet.fleet import Fleet
from vpsfleet.schema import BackupStore, Guest, GuestState
from vpsfleet.values import shown

MB = 1_000_000
MAX_BYTES = 10**18  # an exabyte: beyond, a metric is garbage (and its float would overflow)
NO_CONNECTION = -1  # a guest that does not fit is given none


@dataclass(frozen=True)
class Assumptions:
    fill_ratio: float = 0.5  # share of a plan's disk that holds data
    compression_ratio: float = 0.7  # compressed size / raw size (sites hold images and archives)
    growth: float = 1.1  # last run's bytes grow by this much until tonight
    local_mb_per_s: float = 40.0  # tar + pigz on a guest's shared vCPUs
    margin_minutes: int = 10  # the agent's hard stop sits this long before the window's end
    jitter: Jitter = field(default_factory=Jitter)  # spreads for `jitter_night`


@dataclass(frozen=True)
class Job:
    guest: str
    store: str
    expected_bytes: int
    from_metrics: bool
    rate_mbps: float  # the fastest upload it can have: its plan's bandwidth, or the store's
    seconds: int  # its whole run alone on the store (production, then upload at rate_mbps)
    produce_s: float = 0.0  # building the set locally, before the upload

    @property
    def upload_s(self) -> float:
        """Its upload alone on the store, at its own ceiling."""
        return self.expected_bytes * 8 / (self.rate_mbps * MB)

    @property
    def alone_s(self) -> float:
        return self.produce_s + self.upload_s

    def run(self, start_s: float) -> Run:
        return Run(self.guest, start_s, self.expected_bytes * 8, self.produce_s, self.rate_mbps)


@dataclass(frozen=True)
class Slot:
    job: Job
    connection: int  # which connection its upload holds (0-based; -1: does not fit)
    start_s: int  # seconds after the window's start
    end_s: int  # the simulation's end, rounded up to the second (not fitting: at best, alone)
    upload_s: float = 0.0  # when its upload begins, from the simulation (its set built)

    @property
    def start_minute(self) -> int:
        return self.start_s // 60


@dataclass
class StorePlan:
    store: BackupStore
    window_s: int
    usable_s: int
    slots: list[Slot] = field(default_factory=list)
    late: list[Slot] = field(default_factory=list)  # would end after the usable window
    night: Outcome | None = None  # the simulation of the slots: exact ends, bandwidth in use
    oversubscription: float = 0.0  # the uploads' ceilings' sum over the store's bandwidth, at most

    @property
    def jobs(self) -> list[Job]:
        return [s.job for s in self.slots + self.late]

    @property
    def total_bytes(self) -> int:
        return sum(j.expected_bytes for j in self.jobs)

    @property
    def makespan_s(self) -> int:
        return max((s.end_s for s in self.slots + self.late), default=0)

    @property
    def planned_end_s(self) -> int:
        """The end of the last guest that fits."""
        return max((s.end_s for s in self.slots), default=0)

    @property
    def bandwidth_bound_s(self) -> int:
        """No schedule beats the store's bandwidth once the sets are built (a set cannot upload
        before it is built, its production at the earliest from the window's start: the bytes
        of the sets built after any time t take t plus their transfer at the store's bandwidth;
        t = the first set built gives total bytes / bandwidth), nor the longest run alone."""
        jobs = self.jobs
        if not jobs:
            return 0
        bits_per_s = self.store.bandwidth_mbps * MB
        after = 0.0  # the bits of the sets built at or after this one
        bound = max(j.alone_s for j in jobs)
        for job in sorted(jobs, key=lambda j: -j.produce_s):
            after += job.expected_bytes * 8
            bound = max(bound, job.produce_s + after / bits_per_s)
        return math.ceil(bound)

    @property
    def connection_bound_s(self) -> int:
        """Nor the connections: each upload holds one at least as long as it lasts alone, and
        none begins before a first set is built."""
        jobs = self.jobs
        if not jobs:
            return 0
        first = min(j.produce_s for j in jobs)
        spread = first + sum(j.upload_s for j in jobs) / self.store.max_connections
        return math.ceil(max(spread, max(j.alone_s for j in jobs)))

    @property
    def lower_bound_s(self) -> int:
        return max(self.bandwidth_bound_s, self.connection_bound_s)

    def runs(self) -> list[Run]:
        """The planned runs (those that fit), as the simulation takes them."""
        return [s.job.run(s.start_s) for s in self.slots]


@dataclass
class NightPlan:
    window_start: str  # HH:MM
    window_end: str
    assumptions: Assumptions
    stores: list[StorePlan] = field(default_factory=list)
    without_store: list[str] = field(default_factory=list)  # backup on, no store serves them

    @property
    def late(self) -> list[Slot]:
        return [s for p in self.stores for s in p.late]

    def start_time(self, slot: Slot) -> str:
        return clock(minutes_of(self.window_start) + slot.start_minute)


def minutes_of(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def clock(minutes: int) -> str:
    minutes %= 24 * 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def window_seconds(start: str, end: str) -> int:
    length = minutes_of(end) - minutes_of(start)
    return (length if length > 0 else length + 24 * 60) * 60


def backed_up_guests(fleet: Fleet) -> list[Guest]:
    return [g for g in fleet.guests if g.state is not GuestState.TERMINATED and fleet.backup_enabled(g)]


def expected_bytes(
    fleet: Fleet, guest: Guest, metrics: Mapping[str, int], assume: Assumptions
) -> tuple[int, bool]:
    if guest.name in metrics:
        return math.ceil(metrics[guest.name] * assume.growth), True
    plan = fleet.plan(guest.plan)
    disk_bytes = (plan.disk_gb if plan else 0) * 1_000_000_000
    return math.ceil(disk_bytes * assume.fill_ratio * assume.compression_ratio), False


def make_job(
    fleet: Fleet,
    guest: Guest,
    store: BackupStore,
    metrics: Mapping[str, int],
    assume: Assumptions,
) -> Job:
    size, known = expected_bytes(fleet, guest, metrics, assume)
    plan = fleet.plan(guest.plan)
    rate = float(min(store.bandwidth_mbps, plan.bandwidth_mbps) if plan else store.bandwidth_mbps)
    produce = size / (assume.local_mb_per_s * MB)
    job = Job(guest.name, store.name, size, known, rate, 0, produce)
    return Job(guest.name, store.name, size, known, rate, math.ceil(job.alone_s), produce)


def _admit(sim: Store, run: Run, usable_s: int, most_demand_mbps: float, limit: int) -> Outcome | None:
    """The rest of the night with this run started too, if it ends every run in time, never
    has more than `limit` uploads at once, and while this run uploads, the ceilings of the
    uploads under way sum to at most `most_demand_mbps`."""
    ahead = sim.predict(run, most_uploads=limit, deadline_s=usable_s)
    if ahead is None:
        return None
    ready, end = ahead.uploads[run.name], ahead.ends[run.name]
    return ahead if most_demand(ahead.demand, ready, end) <= most_demand_mbps else None


# How much more than its bandwidth the store is asked for while a run uploads (the sum of the
# uploads' ceilings over the store's bandwidth): tried in turn, the plan that ends first kept.
OVERSUBSCRIPTION_TRIED = (1.5, 2.0, 3.0)
CLOSE_ENOUGH = 1.02  # a plan ending within 2 % of the lower bound (and a minute) is kept at once


def schedule_store(store: BackupStore, jobs: list[Job], window_s: int, usable_s: int) -> StorePlan:
    """The plan, longest runs first, that ends first of those with the oversubscriptions
    tried (the first that ends within `CLOSE_ENOUGH` of the lower bound is kept at once);
    when some guests cannot fit that way, also smallest first without that limit (more guests
    fit, the largest are named): the plan with the fewest guests not fitting, then the
    earliest end, then the first tried."""
    best: StorePlan | None = None
    for longest_first in (True, False):
        if best is not None and not best.late:
            break
        for over in OVERSUBSCRIPTION_TRIED if longest_first else (math.inf,):
            plan = schedule_with(store, jobs, window_s, usable_s, over, longest_first)
            if best is None or (len(plan.late), plan.planned_end_s) < (
                len(best.late),
                best.planned_end_s,
            ):
                best = plan
            if not best.late and best.planned_end_s <= CLOSE_ENOUGH * best.lower_bound_s + 60:
                return best
    assert best is not None
    return best


def schedule_with(
    store: BackupStore,
    jobs: list[Job],
    window_s: int,
    usable_s: int,
    oversubscription: float,
    longest_first: bool = True,
) -> StorePlan:
    """Longest (or smallest) first at each whole minute, each start admitted only if the
    simulation of the night with it ends every run in time, never has more uploads at once
    than the store's connections, and while its own upload runs, the uploads' ceilings sum to
    at most `oversubscription` times the store's bandwidth (or one run's ceiling)."""
    plan = StorePlan(store, window_s, usable_s, oversubscription=oversubscription)
    sim = Store(store.bandwidth_mbps)  # no queue for a connection: the plan never needs one
    sign = -1 if longest_first else 1
    pending = sorted(jobs, key=lambda j: (sign * j.alone_s, j.guest))
    started: list[tuple[Job, int]] = []  # job, start
    bandwidth = store.bandwidth_mbps * MB
    minute = 0
    while pending:
        sim.advance_to(minute)
        waiting = []
        for job in pending:
            if minute + job.alone_s > usable_s or minute >= window_s:
                start = min(minute, max(0, window_s - 60))
                plan.late.append(
                    Slot(
                        job,
                        NO_CONNECTION,
                        start,
                        math.ceil(start + job.alone_s),
                        start + job.produce_s,
                    )
                )
            else:
                waiting.append(job)
        pending = waiting
        ahead = sim.rest_of_night()  # the uploads under way if nothing else starts
        index = 0
        while index < len(pending):
            job = pending[index]
            ready = minute + job.produce_s
            most = max(oversubscription * store.bandwidth_mbps, job.rate_mbps)
            # Cheap refusal (a guess; `_admit` decides): its upload, at the share it would have
            # with the uploads under way when its set is built, would exceed either limit.
            share = min(job.rate_mbps * MB, bandwidth / (sessions_at(ahead.sessions, ready) + 1))
            upload = job.expected_bytes * 8 / share
            if (
                most_sessions(ahead.sessions, ready, ready + upload) >= store.max_connections
                or most_demand(ahead.demand, ready, ready + upload) + job.rate_mbps > most
                or not (night := _admit(sim, job.run(minute), usable_s, most, store.max_connections))
            ):
                if not longest_first:
                    break  # smallest first strictly: a larger run never takes a smaller's place
                index += 1
                continue
            ahead = night
            sim.add(job.run(minute))
            started.append((job, minute))
            pending.pop(index)
        minute += 60
    plan.night = sim.finish()
    plan.slots = _connections(plan.night, started)
    plan.late.sort(key=lambda s: (s.start_s, s.job.guest))
    return plan


def _connections(night: Outcome, started: list[tuple[Job, int]]) -> list[Slot]:
    """Each upload on the lowest connection free when it begins (an upload ending frees its
    connection for one beginning at that very time)."""
    free_at: list[float] = []  # per connection, when its last upload ends
    slots = []
    for job, start in sorted(started, key=lambda s: (night.uploads[s[0].guest], s[0].guest)):
        begins = night.uploads[job.guest]
        connection = next((c for c, at in enumerate(free_at) if at <= begins), len(free_at))
        if connection == len(free_at):
            free_at.append(0.0)
        free_at[connection] = night.ends[job.guest]
        slots.append(Slot(job, connection, start, math.ceil(night.ends[job.guest]), begins))
    slots.sort(key=lambda s: (s.start_s, s.job.guest))
    return slots


def plan_night(
    fleet: Fleet,
    metrics: Mapping[str, int] | None = None,
    assume: Assumptions | None = None,
) -> NightPlan:
    assume = assume or Assumptions()
    window = fleet.policy.backup.window
    window_s = window_seconds(window.start, window.end)
    usable_s = max(0, window_s - assume.margin_minutes * 60)
    night = NightPlan(window.start, window.end, assume)
    by_store: dict[str, list[Job]] = {}
    for guest in backed_up_guests(fleet):
        store = fleet.store_for(guest)
        if store is None:
            night.without_store.append(guest.name)
            continue
        by_store.setdefault(store.name, []).append(make_job(fleet, guest, store, metrics or {}, assume))
    for store in fleet.backup_stores:
        if store.name in by_store:
            night.stores.append(schedule_store(store, by_store[store.name], window_s, usable_s))
    night.without_store.sort()
    return night


def simulate_plan(plan: StorePlan) -> Outcome:
    """The night of the plan's guests that fit, simulated anew from their starts alone."""
    return simulate(plan.runs(), plan.store.bandwidth_mbps, plan.store.max_connections)


def jitter_night(plan: StorePlan, spread: Jitter | None = None) -> JitterResult:
    """The plan's night run many times with sizes, rates and bandwidth drawn around the
    expected ones (`Assumptions.jitter`): how late its last guest is. A set built while the
    store's sessions are all taken is refused, and retried after the agent's back-off."""
    return jitter(
        plan.runs(),
        plan.store.bandwidth_mbps,
        spread or Jitter(),
        plan.usable_s,
        plan.store.max_connections,
    )


def parse_metrics(data: object) -> dict[str, int]:
    """Last-run bytes per guest: `{"web1": 123}` or `{"web1": {"bytes": 123}}`, optionally
    under a top-level `guests` key (the shape of a status-file export)."""
    if isinstance(data, dict) and isinstance(data.get("guests"), dict):
        data = data["guests"]
    if not isinstance(data, dict):
        raise ValueError("metrics: expected a mapping of guest name to bytes")
    found: dict[str, int] = {}
    for name, value in data.items():
        if isinstance(value, dict):
            value = value.get("bytes")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_BYTES:
            raise ValueError(
                f"metrics: {shown(name)}: expected a byte count (0 to {MAX_BYTES:.0e}), got {shown(value)}"
            )
        found[str(name)] = value
    return found


# --- the chart --------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


CHAR_EM = 0.6  # a sans-serif character's width, in font sizes (to keep labels apart)


def text_width(text: str, size: float = 11) -> float:
    return len(text) * size * CHAR_EM


def render_svg(night: NightPlan) -> str:
    """The night as a Gantt chart: per store, one row per connection with a bar per guest's
    upload (the connection it holds) and a thin line before it while its set is built (no
    connection held yet), one row per guest that does not fit
    (red, from the minute it could start to the end it would need, past the hard stop), and the
    store's bandwidth in use over the night as an area under the rows. The window's end and the
    agent's hard stop are vertical lines, labelled on either side so the labels never meet."""
    left, width, row, gap, band = 170, 900, 18, 30, 48
    window_s = window_seconds(night.window_start, night.window_end)
    longest = max([window_s, *(p.makespan_s for p in night.stores)])
    scale = width / longest

    def x(seconds: float) -> float:
        return left + seconds * scale

    rows = sum(p.store.max_connections + len(p.late) for p in night.stores)
    height = 60 + rows * row + len(night.stores) * (gap + band + 20) + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="10" y="20" font-size="14">Backups of the night {night.window_start}-'
        f"{night.window_end}</text>",
    ]
    start_min = minutes_of(night.window_start)
    step = next((m for m in (10, 15, 30, 60, 120, 180, 360) if m * 60 * scale >= 50), 720)
    for minute in range(0, longest // 60 + 1, step):
        out.append(
            f'<line x1="{x(minute * 60):.1f}" y1="40" x2="{x(minute * 60):.1f}" '
            f'y2="{height - 20}" stroke="#ddd"/>'
            f'<text x="{x(minute * 60):.1f}" y="{height - 6}" text-anchor="middle">'
            f"{clock(start_min + minute)}</text>"
        )
    usable = window_s - night.assumptions.margin_minutes * 60
    # The hard stop precedes the end: its label goes to the left of its line, the end's to the
    # right of its own, both on the same line of text.
    for at, colour, label, anchor, shift in (
        (window_s, "#c00", "end", "start", 3),
        (usable, "#e80", "hard stop", "end", -3),
    ):
        out.append(
            f'<line x1="{x(at):.1f}" y1="25" x2="{x(at):.1f}" y2="{height - 20}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{x(at) + shift:.1f}" y="36" fill="{colour}" text-anchor="{anchor}">'
            f"{label}</text>"
        )
    y = 50
    for plan in night.stores:
        out.append(f'<text x="10" y="{y + 12}" font-weight="bold">{_escape(plan.store.name)}</text>')
        y += gap - 10
        for connection in range(plan.store.max_connections):
            mine = sorted((s for s in plan.slots if s.connection == connection), key=lambda s: s.upload_s)
            top = y + connection * row
            free_from = float(left)  # where the row's next label may begin
            for slot in mine:  # the sets being built: thin lines, under the uploads
                out.append(_building(slot, x, top))
            for i, slot in enumerate(mine):
                fill = "#4a8" if slot.job.from_metrics else "#48c"
                out.append(_bar(slot, x, scale, top, row, fill, night.start_time(slot)))
                # The name inside its bar, else just after it when the row leaves room before
                # the next bar; else only in the bar's tooltip.
                begin = x(slot.upload_s)
                finish = x(slot.end_s)
                limit = x(mine[i + 1].upload_s) if i + 1 < len(mine) else left + width + 55
                wide = text_width(slot.job.guest)
                if begin + 2 >= free_from and begin + 2 + wide + 2 <= finish:
                    where, ink = begin + 2, "#fff"
                elif finish + 2 >= free_from and finish + 2 + wide + 2 <= limit:
                    where, ink = finish + 2, "#333"
                else:
                    continue
                name = _escape(slot.job.guest)
                out.append(f'<text x="{where:.1f}" y="{top + row - 6}" fill="{ink}">{name}</text>')
                free_from = where + wide + 2
        for connection in range(plan.store.max_connections):
            out.append(
                f'<text x="10" y="{y + connection * row + row - 6}" fill="#666">'
                f"connection {connection + 1}</text>"
            )
        y += plan.store.max_connections * row
        for slot in plan.late:
            out.append(_bar(slot, x, scale, y, row, "#d33", None))
            name = slot.job.guest
            if text_width(name) > left - 20:
                name = name[: int((left - 20) / text_width("m")) - 1] + "…"
            out.append(f'<text x="10" y="{y + row - 6}" fill="#d33">{_escape(name)}</text>')
            y += row
        y += 10
        out.append(_bandwidth(plan, x, y, band, left))
        y += band + 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _bar(
    slot: Slot,
    x: Callable[[float], float],
    scale: float,
    top: float,
    row: int,
    fill: str,
    start: str | None,
) -> str:
    """A planned guest's upload (its connection held), or with `start` None the whole run of a
    guest that does not fit."""
    job = slot.job
    begin = slot.upload_s if start is not None else slot.start_s
    span = max(1.0, (slot.end_s - begin) * scale)
    if start is None:
        told = f"does not fit: needs {(slot.end_s - slot.start_s) // 60} min even alone"
    else:
        told = (
            f"starts {start}, set built in {round(slot.upload_s - slot.start_s) // 60} min, "
            f"uploads {round(slot.end_s - slot.upload_s) // 60} min"
        )
    return (
        f'<rect x="{x(begin):.1f}" y="{top}" width="{span:.1f}" height="{row - 3}" '
        f'fill="{fill}" data-guest="{_escape(job.guest)}"><title>{_escape(job.guest)}: '
        f"{job.expected_bytes / 1e9:.1f} GB, {told}</title></rect>"
    )


def _building(slot: Slot, x: Callable[[float], float], top: float) -> str:
    """The set being built (no connection held yet): a thin line ending where the upload
    begins."""
    return (
        f'<line x1="{x(slot.start_s):.1f}" y1="{top + 1}" x2="{x(slot.upload_s):.1f}" '
        f'y2="{top + 1}" stroke="#999" stroke-width="2" stroke-opacity="0.5"/>'
    )


def _bandwidth(plan: StorePlan, x: Callable[[float], float], top: float, band: int, left: int) -> str:
    """The store's bandwidth in use, as a step area from 0 (bottom) to the store's (top)."""
    bottom = top + band
    full = plan.store.bandwidth_mbps
    steps = list(plan.night.usage) if plan.night else []
    points = [f"{x(0):.1f},{bottom:.1f}"]
    for i, (at, used) in enumerate(steps):
        level = bottom - band * min(1.0, used / full)
        until = steps[i + 1][0] if i + 1 < len(steps) else at
        points.append(f"{x(at):.1f},{level:.1f} {x(until):.1f},{level:.1f}")
    points.append(f"{x(steps[-1][0] if steps else 0):.1f},{bottom:.1f}")
    return (
        f'<rect x="{left}" y="{top}" width="{x(plan.makespan_s) - left:.1f}" height="{band}" '
        f'fill="none" stroke="#bbb"/>'
        f'<polygon points="{" ".join(points)}" fill="#8ab" data-store="{_escape(plan.store.name)}">'
        f"<title>{_escape(plan.store.name)}: bandwidth in use, of {full} Mbit/s</title></polygon>"
        f'<text x="10" y="{top + 14}" fill="#666">store bandwidth</text>'
        f'<text x="10" y="{top + 28}" fill="#666">in use (of {full} Mbit/s)</text>'
    )
