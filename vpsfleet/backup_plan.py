"""The night's backup plan: a start time for each guest inside the window (M18) so that the
guests sharing a store finish before the window ends, given their expected sizes and the store's
bandwidth and connection limit. Deterministic: the same fleet gives the same plan.

Model (conservative on purpose):
- a store serves at most `max_connections` guests at once; each running backup gets at least
  `bandwidth_mbps / max_connections` of it, and never more than its plan's own bandwidth;
- a guest's run takes its local production time (tar + compression at `local_mb_per_s`) plus its
  upload at that rate; the production overlaps nothing on the store, so counting it in the slot
  makes the estimate an upper bound;
- its size is the last run's bytes when known (`metrics`, times `growth`), else the plan's disk
  times `fill_ratio` (how full a disk is) times `compression_ratio`.

Scheduling is longest-first list scheduling on the store's connection slots (LPT: within 4/3 of
the best makespan), ties broken by guest name. A guest that would end after the window minus
`margin_minutes` is reported as not fitting, with the time it would need.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from vpsfleet.fleet import Fleet
from vpsfleet.schema import BackupStore, Guest, GuestState
from vpsfleet.values import shown

MB = 1_000_000
MAX_BYTES = 10**18  # an exabyte: beyond, a metric is garbage (and its float would overflow)


@dataclass(frozen=True)
class Assumptions:
    fill_ratio: float = 0.5  # share of a plan's disk that holds data
    compression_ratio: float = 0.7  # compressed size / raw size (sites hold images and archives)
    growth: float = 1.1  # last run's bytes grow by this much until tonight
    local_mb_per_s: float = 40.0  # tar + pigz on a guest's shared vCPUs
    margin_minutes: int = 10  # the agent's hard stop sits this long before the window's end


@dataclass(frozen=True)
class Job:
    guest: str
    store: str
    expected_bytes: int
    from_metrics: bool
    rate_mbps: float  # upload rate the plan counts on
    seconds: int  # expected duration of the whole run


@dataclass(frozen=True)
class Slot:
    job: Job
    connection: int  # which of the store's connections it uses (0-based)
    start_s: int  # seconds after the window's start
    end_s: int

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

    @property
    def total_bytes(self) -> int:
        return sum(s.job.expected_bytes for s in self.slots + self.late)

    @property
    def makespan_s(self) -> int:
        return max((s.end_s for s in self.slots + self.late), default=0)

    @property
    def lower_bound_s(self) -> int:
        """No schedule beats the store's bandwidth, nor its longest single run."""
        transfer = self.total_bytes * 8 / (self.store.bandwidth_mbps * MB)
        longest = max((s.job.seconds for s in self.slots + self.late), default=0)
        return math.ceil(max(transfer, longest))


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
    return [
        g
        for g in fleet.guests
        if g.state is not GuestState.TERMINATED and fleet.backup_enabled(g)
    ]


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
    share = store.bandwidth_mbps / store.max_connections
    rate = min(share, plan.bandwidth_mbps) if plan else share
    produce = size / (assume.local_mb_per_s * MB)
    upload = size * 8 / (rate * MB)
    return Job(guest.name, store.name, size, known, rate, math.ceil(produce + upload))


def schedule_store(store: BackupStore, jobs: list[Job], window_s: int, usable_s: int) -> StorePlan:
    """Longest first, each on the connection that frees first; starts on whole minutes (what
    a systemd timer can express), so a connection frees at the minute after its run ends."""
    plan = StorePlan(store, window_s, usable_s)
    free: list[tuple[int, int]] = [(0, c) for c in range(store.max_connections)]
    heapq.heapify(free)
    for job in sorted(jobs, key=lambda j: (-j.seconds, j.guest)):
        at, connection = heapq.heappop(free)
        slot = Slot(job, connection, at, at + job.seconds)
        if slot.end_s <= usable_s:
            plan.slots.append(slot)
            heapq.heappush(free, (math.ceil(slot.end_s / 60) * 60, connection))
        else:
            # Reported with the start it would have had; its connection stays free for the
            # shorter runs that still fit.
            plan.late.append(slot)
            heapq.heappush(free, (at, connection))
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
        by_store.setdefault(store.name, []).append(
            make_job(fleet, guest, store, metrics or {}, assume)
        )
    for store in fleet.backup_stores:
        if store.name in by_store:
            night.stores.append(schedule_store(store, by_store[store.name], window_s, usable_s))
    night.without_store.sort()
    return night


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
            raise ValueError(f"metrics: {shown(name)}: expected a byte count (0 to {MAX_BYTES:.0e}), "
                             f"got {shown(value)}")
        found[str(name)] = value
    return found


# --- the chart --------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_svg(night: NightPlan) -> str:
    """The night as a Gantt chart: one row per store connection, one bar per guest, the
    window's end and the agent's hard stop as vertical lines, late guests in red."""
    left, width, row, gap = 160, 900, 18, 30
    window_s = window_seconds(night.window_start, night.window_end)
    longest = max([window_s, *(p.makespan_s for p in night.stores)])
    scale = width / longest

    def x(seconds: float) -> float:
        return left + seconds * scale

    rows = sum(p.store.max_connections for p in night.stores)
    height = 60 + rows * row + len(night.stores) * gap + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 40}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="10" y="20" font-size="14">Backups of the night {night.window_start}-'
        f"{night.window_end}</text>",
    ]
    start_min = minutes_of(night.window_start)
    for minute in range(0, longest // 60 + 1, 30):
        out.append(
            f'<line x1="{x(minute * 60):.1f}" y1="40" x2="{x(minute * 60):.1f}" '
            f'y2="{height - 20}" stroke="#ddd"/>'
            f'<text x="{x(minute * 60):.1f}" y="{height - 6}" text-anchor="middle">'
            f"{clock(start_min + minute)}</text>"
        )
    usable = window_s - night.assumptions.margin_minutes * 60
    for at, colour, label in ((window_s, "#c00", "end"), (usable, "#e80", "hard stop")):
        out.append(
            f'<line x1="{x(at):.1f}" y1="35" x2="{x(at):.1f}" y2="{height - 20}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{x(at) + 3:.1f}" y="36" fill="{colour}">{label}</text>'
        )
    y = 50
    for plan in night.stores:
        out.append(
            f'<text x="10" y="{y + 12}" font-weight="bold">{_escape(plan.store.name)}</text>'
        )
        y += gap - 10
        for slot in plan.slots + plan.late:
            top = y + slot.connection * row
            late = slot in plan.late
            fill = "#d33" if late else ("#4a8" if slot.job.from_metrics else "#48c")
            out.append(
                f'<rect x="{x(slot.start_s):.1f}" y="{top}" '
                f'width="{max(1.0, slot.job.seconds * scale):.1f}" height="{row - 3}" '
                f'fill="{fill}"><title>{_escape(slot.job.guest)}: '
                f"{slot.job.expected_bytes / 1e9:.1f} GB, {slot.job.seconds // 60} min"
                f"</title></rect>"
                f'<text x="{x(slot.start_s) + 2:.1f}" y="{top + row - 6}" fill="#fff">'
                f"{_escape(slot.job.guest)}</text>"
            )
        for connection in range(plan.store.max_connections):
            out.append(
                f'<text x="10" y="{y + connection * row + row - 6}" fill="#666">'
                f"connection {connection + 1}</text>"
            )
        y += plan.store.max_connections * row + 10
    out.append("</svg>")
    return "\n".join(out) + "\n"
