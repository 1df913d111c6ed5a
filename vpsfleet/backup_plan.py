"""The night's backup plan: a start time for each guest inside the window (M18) so that the
guests sharing a store finish before the window ends, given their expected sizes and the store's
bandwidth and connection limit. Deterministic: the same fleet gives the same plan.

Model (issue 15; simulated in `vpsfleet.backup_night`):
- a guest's run first builds its set locally (tar + compression at `local_mb_per_s`), which takes
  no store bandwidth, then uploads it; the uploads under way share the store's bandwidth equally,
  each at most its plan's own bandwidth; a run ends when its last bit is through;
- a run holds one of the store's `max_connections` from its start to its end, production
  included (conservative: the agent connects once its set is built);
- its size is the last run's bytes when known (`metrics`, times `growth`), else the plan's disk
  times `fill_ratio` (how full a disk is) times `compression_ratio`.

Scheduling, at each whole minute (what a systemd timer expresses), for each free connection:
- the longest waiting run (ties by guest name) whose start keeps every run under way, itself
  included, ending before the window minus `margin_minutes` if nothing else started (the
  simulation of the runs under way predicts that exactly); after a refusal the longest admitted
  is found by bisection;
- it starts if the store has spare bandwidth when its set will be built (the runs under way,
  simulated, leave some unused then, or a minute later); else the connection takes the shortest
  waiting run instead, which frees it again soon, and the long one waits for the next minute;
- the plan's ends are the simulation's (`simulate_plan` gives them anew from the starts alone).
A guest that cannot end in time even alone on the store from the minute it could start is
reported as not fitting, with the time it would need at best; it holds no connection. Starts
follow the plan, not the night: when runs last longer than planned, a guest's timer still fires
and more runs than `max_connections` may overlap (`jitter_night` measures how many).
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
    in_use_at,
    jitter,
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
    def alone_s(self) -> float:
        return self.produce_s + self.expected_bytes * 8 / (self.rate_mbps * MB)

    def run(self, start_s: float) -> Run:
        return Run(self.guest, start_s, self.expected_bytes * 8, self.produce_s, self.rate_mbps)


@dataclass(frozen=True)
class Slot:
    job: Job
    connection: int  # which of the store's connections it holds (0-based; -1: does not fit)
    start_s: int  # seconds after the window's start
    end_s: int  # the simulation's end, rounded up to the second (not fitting: at best, alone)

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
    def bandwidth_bound_s(self) -> int:
        """No schedule beats the store's bandwidth (which idles until a first set is built),
        nor the longest run alone on the store."""
        jobs = self.jobs
        if not jobs:
            return 0
        transfer = self.total_bytes * 8 / (self.store.bandwidth_mbps * MB)
        first = min(j.produce_s for j in jobs)
        return math.ceil(max(first + transfer, max(j.alone_s for j in jobs)))

    @property
    def connection_bound_s(self) -> int:
        """Nor the connections: each run holds one at least as long as it lasts alone."""
        jobs = self.jobs
        if not jobs:
            return 0
        spread = sum(j.alone_s for j in jobs) / self.store.max_connections
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


def _admit(sim: Store, run: Run, usable_s: int) -> Outcome | None:
    """The rest of the night with this run started too, if it ends every run in time."""
    ahead = sim.predict(run)
    return ahead if all(end <= usable_s for end in ahead.ends.values()) else None


def _longest_fitting(
    sim: Store, pending: list[Job], minute: int, usable_s: int
) -> tuple[int, Outcome] | None:
    """The longest waiting run whose start now keeps every run ending in time, and the rest of
    the night with it; found by bisection once the longest is refused (a shorter run is taken
    to fit whenever a longer one does)."""
    if ahead := _admit(sim, pending[0].run(minute), usable_s):
        return 0, ahead
    last = len(pending) - 1
    if last == 0 or not (ahead := _admit(sim, pending[last].run(minute), usable_s)):
        return None
    low, high = 1, last
    while low < high:
        middle = (low + high) // 2
        if found := _admit(sim, pending[middle].run(minute), usable_s):
            high, ahead = middle, found
        else:
            low = middle + 1
    return low, ahead


def schedule_store(store: BackupStore, jobs: list[Job], window_s: int, usable_s: int) -> StorePlan:
    """Longest first on the store's connections, starts on whole minutes, each start admitted
    only if the simulation of the runs under way, with it, still ends every one of them in time.
    The waiting guests are tried longest first; after one is refused, the longest that is
    admitted is found by bisection (a shorter run is taken to fit whenever a longer one does)."""
    plan = StorePlan(store, window_s, usable_s)
    sim = Store(store.bandwidth_mbps)
    pending = sorted(jobs, key=lambda j: (-j.alone_s, j.guest))
    holder: list[str | None] = [None] * store.max_connections  # the run on each connection
    started: list[tuple[Job, int, int]] = []  # job, connection, start
    minute = 0
    spare_below = store.bandwidth_mbps * (1 - 1e-9)
    while pending:
        sim.advance_to(minute)
        waiting = []
        for job in pending:
            if minute + job.alone_s > usable_s or minute >= window_s:
                start = min(minute, max(0, window_s - 60))
                plan.late.append(Slot(job, NO_CONNECTION, start, math.ceil(start + job.alone_s)))
            else:
                waiting.append(job)
        pending = waiting
        free = [c for c, name in enumerate(holder) if name is None or name in sim.ends]
        ahead = sim.predict().usage  # the rest of the night if nothing else starts
        while free and pending:
            if not (found := _longest_fitting(sim, pending, minute, usable_s)):
                break
            index, night = found
            # The store's spare bandwidth: a long run started now is worth it if, once its set
            # is built, the runs under way leave bandwidth unused (waiting a minute would waste
            # it). Else the connection takes the shortest run, which frees it again soon.
            if in_use_at(ahead, minute + pending[index].produce_s + 60) >= spare_below:
                index = len(pending) - 1
                if not (shortest := _admit(sim, pending[index].run(minute), usable_s)):
                    break
                night = shortest
            ahead = night.usage  # the prediction that admitted it: the night with it
            job = pending.pop(index)
            connection = free.pop(0)
            sim.add(job.run(minute))
            holder[connection] = job.guest
            started.append((job, connection, minute))
        if not pending:
            break
        event = sim.next_event()
        if free or event is None:
            minute += 60
        else:
            minute = max(minute + 60, math.ceil(event / 60) * 60)
    plan.night = sim.finish()
    plan.slots = [
        Slot(job, connection, start, math.ceil(plan.night.ends[job.guest]))
        for job, connection, start in started
    ]
    plan.slots.sort(key=lambda s: (s.start_s, s.job.guest))
    plan.late.sort(key=lambda s: (s.start_s, s.job.guest))
    return plan


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
    return simulate(plan.runs(), plan.store.bandwidth_mbps)


def jitter_night(plan: StorePlan, spread: Jitter | None = None) -> JitterResult:
    """The plan's night run many times with sizes, rates and bandwidth drawn around the
    expected ones (`Assumptions.jitter`): how late its last guest is."""
    return jitter(plan.runs(), plan.store.bandwidth_mbps, spread or Jitter(), plan.usable_s)


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
    """The night as a Gantt chart: per store, one row per connection with a bar per guest (its
    set being built in a lighter shade, then its upload), one row per guest that does not fit
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
        uploads = plan.night.uploads if plan.night else {}
        for connection in range(plan.store.max_connections):
            mine = sorted((s for s in plan.slots if s.connection == connection), key=lambda s: s.start_s)
            top = y + connection * row
            free_from = float(left)  # where the row's next label may begin
            for i, slot in enumerate(mine):
                fill = "#4a8" if slot.job.from_metrics else "#48c"
                built = uploads.get(slot.job.guest, slot.start_s + slot.job.produce_s)
                out.append(_bar(slot, x, scale, top, row, fill, built))
                # The name inside its bar, else just after it when the row leaves room before
                # the next bar; else only in the bar's tooltip.
                begin = x(slot.start_s)
                finish = begin + (slot.end_s - slot.start_s) * scale
                limit = x(mine[i + 1].start_s) if i + 1 < len(mine) else left + width + 55
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
    built: float | None,
) -> str:
    job = slot.job
    span = max(1.0, (slot.end_s - slot.start_s) * scale)
    verdict = "" if built is not None else ", does not fit: needs"
    parts = [
        f'<rect x="{x(slot.start_s):.1f}" y="{top}" width="{span:.1f}" height="{row - 3}" '
        f'fill="{fill}" data-guest="{_escape(job.guest)}"><title>{_escape(job.guest)}: '
        f"{job.expected_bytes / 1e9:.1f} GB{verdict} {(slot.end_s - slot.start_s) // 60} min"
        f"</title></rect>"
    ]
    if built is not None and built > slot.start_s:
        parts.append(
            f'<rect x="{x(slot.start_s):.1f}" y="{top}" '
            f'width="{max(0.5, (built - slot.start_s) * scale):.1f}" height="{row - 3}" '
            f'fill="#fff" fill-opacity="0.35"/>'
        )
    return "".join(parts)


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
