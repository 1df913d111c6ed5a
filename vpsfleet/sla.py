"""The SLA maths (M25-M27): from one machine's probe results to its incidents, availability and
credit. Pure functions on integers (milliseconds since the epoch): no clock, no network.

The rules, as `docs/sla.md` explains them:

- a probe's result holds from its timestamp until the next probe, when that one comes within
  `gap_ms` (two probe intervals: one lost probe is not a hole in the data); otherwise it holds
  for one probe interval and the rest, up to the next probe, is *unknown*;
- an incident is a maximal run of failed probes without a hole in the data; it lasts from the
  first failed probe to the first successful one (or, when the data stops, to the end of the
  last failed probe's interval);
- excluded time (planned maintenance, suspension, mitigation, time out of service) is cut out of
  every incident first; a piece inside an exclusion is listed with its reason and never counts;
- an incident piece counts when it lasts more than `threshold` (M26); each counted piece earns
  `credit_per_minute` % per full minute beyond the first `threshold` minutes, the month's credit
  capped at `credit_cap` % (M27);
- availability = (known minutes - unavailable minutes) / known minutes, where known minutes are
  the month's minutes minus excluded and unknown time (M25: unknown is never counted either way).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

# Months are calendar months of the provider's time zone (the contracts are French): a month
# starts at local midnight, so March and October are an hour shorter or longer than 31 days.
PROBE_INTERVAL_MS = 15_000  # the monitor's ICMP probe interval (issue 14)
MINUTE_MS = 60_000


class State(StrEnum):
    UP = "up"
    DOWN = "down"  # a raw state, before the threshold is applied
    DOWN_COUNTED = "down_counted"
    DOWN_NOT_COUNTED = "down_not_counted"
    EXCLUDED = "excluded"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Segment:
    start: int  # ms, inclusive
    end: int  # ms, exclusive
    state: State
    reason: str | None = None  # for EXCLUDED

    @property
    def ms(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Exclusion:
    start: int
    end: int
    reason: str


@dataclass(frozen=True)
class Rules:
    threshold_minutes: int
    credit_percent_per_minute: float
    credit_cap_percent: float
    probe_interval_ms: int = PROBE_INTERVAL_MS

    @property
    def gap_ms(self) -> int:
        return 2 * self.probe_interval_ms


@dataclass(frozen=True)
class Incident:
    start: int
    end: int
    counted: bool
    excluded_reason: str | None
    credit_minutes: int  # full minutes beyond the threshold (0 unless counted)

    @property
    def ms(self) -> int:
        return self.end - self.start


@dataclass
class Outcome:
    start: int
    end: int
    unavailable_ms: int
    unknown_ms: int
    excluded_ms: int
    incidents: list[Incident]
    segments: list[Segment]
    credit_minutes: int
    credit_percent: float | None = None  # None: the offer has no SLA

    @property
    def month_ms(self) -> int:
        return self.end - self.start

    @property
    def known_ms(self) -> int:
        return self.month_ms - self.excluded_ms - self.unknown_ms

    @property
    def availability_percent(self) -> float | None:
        if self.known_ms <= 0:
            return None
        return 100.0 * (self.known_ms - self.unavailable_ms) / self.known_ms


def month_bounds(year: int, month: int, tz: dt.tzinfo) -> tuple[int, int]:
    """The month [start, end) in ms since the epoch: local midnight to local midnight."""
    first = dt.datetime(year, month, 1, tzinfo=tz)
    following = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return to_ms(first), to_ms(following)


def to_ms(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # instants of the fleet without a zone are UTC
    return round(moment.timestamp() * 1000)


def day_start_ms(day: dt.date, tz: dt.tzinfo) -> int:
    return to_ms(dt.datetime(day.year, day.month, day.day, tzinfo=tz))


def from_ms(ms: int, tz: dt.tzinfo = dt.UTC) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz)


def _merge(segments: Iterable[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for seg in segments:
        if seg.end <= seg.start:
            continue
        last = merged[-1] if merged else None
        if last and last.end == seg.start and last.state is seg.state and last.reason == seg.reason:
            merged[-1] = Segment(last.start, seg.end, seg.state, seg.reason)
        else:
            merged.append(seg)
    return merged


def timeline(samples: Sequence[tuple[int, bool]], start: int, end: int, rules: Rules) -> list[Segment]:
    """The month as UP, DOWN and UNKNOWN segments covering [start, end), from probe results
    (timestamp in ms, success) sorted by time; samples outside the month may be given (the one
    just before the start says what the month starts with)."""
    raw: list[Segment] = []
    cursor = start
    count = len(samples)
    for i in range(count):
        t, ok = samples[i]
        following = samples[i + 1][0] if i + 1 < count else None
        if following is not None and following <= t:
            continue  # a duplicate timestamp: the later sample wins
        if following is not None and following - t <= rules.gap_ms:
            held = following
        else:
            held = t + rules.probe_interval_ms
        a, b = max(t, start), min(held, end)
        if a > cursor:
            raw.append(Segment(cursor, min(a, end), State.UNKNOWN))
            cursor = min(a, end)
        if b > a:
            raw.append(Segment(a, b, State.UP if ok else State.DOWN))
            cursor = b
        if t >= end:
            break
    if cursor < end:
        raw.append(Segment(cursor, end, State.UNKNOWN))
    return _merge(raw)


def _disjoint(exclusions: Iterable[Exclusion], start: int, end: int) -> list[Exclusion]:
    """Exclusions clipped to the month, made disjoint; overlapping reasons are joined."""
    clipped = [(max(e.start, start), min(e.end, end), e.reason) for e in exclusions]
    clipped = [c for c in clipped if c[1] > c[0]]
    cuts = sorted({p for a, b, _ in clipped for p in (a, b)})
    pieces: list[Exclusion] = []
    for a, b in itertools.pairwise(cuts):
        reasons = [r for s, e, r in clipped if s <= a and b <= e]
        if reasons:
            joined = "; ".join(dict.fromkeys(reasons))
            if pieces and pieces[-1].end == a and pieces[-1].reason == joined:
                pieces[-1] = Exclusion(pieces[-1].start, b, joined)
            else:
                pieces.append(Exclusion(a, b, joined))
    return pieces


def _split(seg: Segment, exclusions: list[Exclusion]) -> list[tuple[int, int, str | None]]:
    """A segment cut by the exclusions: pieces with the exclusion's reason, or None outside."""
    pieces: list[tuple[int, int, str | None]] = []
    cursor = seg.start
    for ex in exclusions:
        if ex.end <= cursor or ex.start >= seg.end:
            continue
        if ex.start > cursor:
            pieces.append((cursor, ex.start, None))
        pieces.append((max(ex.start, cursor), min(ex.end, seg.end), ex.reason))
        cursor = min(ex.end, seg.end)
    if cursor < seg.end:
        pieces.append((cursor, seg.end, None))
    return pieces


def assess(
    raw: Sequence[Segment],
    start: int,
    end: int,
    rules: Rules,
    exclusions: Iterable[Exclusion] = (),
    *,
    has_sla: bool = True,
) -> Outcome:
    """Incidents, unavailable, unknown and excluded time and the credit of one machine's month,
    from its raw timeline (see `timeline`)."""
    excl = _disjoint(exclusions, start, end)
    threshold = rules.threshold_minutes * MINUTE_MS
    incidents: list[Incident] = []
    segments: list[Segment] = []
    unavailable = unknown = 0
    credit_minutes = 0
    for seg in raw:
        for a, b, reason in _split(seg, excl):
            if reason is not None:
                segments.append(Segment(a, b, State.EXCLUDED, reason))
                if seg.state is State.DOWN:
                    incidents.append(Incident(a, b, False, reason, 0))
                continue
            if seg.state is State.UNKNOWN:
                unknown += b - a
                segments.append(Segment(a, b, State.UNKNOWN))
            elif seg.state is State.UP:
                segments.append(Segment(a, b, State.UP))
            else:
                counted = b - a > threshold
                full = (b - a - threshold) // MINUTE_MS if counted else 0
                incidents.append(Incident(a, b, counted, None, full))
                if counted:
                    unavailable += b - a
                    credit_minutes += full
                segments.append(
                    Segment(a, b, State.DOWN_COUNTED if counted else State.DOWN_NOT_COUNTED)
                )
    excluded = sum(e.end - e.start for e in excl)
    credit = (
        min(rules.credit_cap_percent, credit_minutes * rules.credit_percent_per_minute)
        if has_sla
        else None
    )
    return Outcome(start, end, unavailable, unknown, excluded, incidents, _merge(segments),
                   credit_minutes, credit)
