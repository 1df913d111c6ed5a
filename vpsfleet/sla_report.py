"""The monthly SLA report (M25-M27): which machines, what is excluded for each, and the report's
forms (table, JSON, CSV). The maths is `sla.py`; reading Prometheus is `sla_probes.py`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from vpsfleet.fleet import Fleet
from vpsfleet.prometheus import Prometheus
from vpsfleet.schema import DedicatedServer, Guest, GuestState, MaintenanceWindow
from vpsfleet.sla import (
    MINUTE_MS,
    Exclusion,
    Outcome,
    Rules,
    Segment,
    State,
    assess,
    day_start_ms,
    from_ms,
    to_ms,
)
from vpsfleet.sla_probes import Machine, read_timelines
from vpsfleet.validate import MAINTENANCE_ALL


class UnknownMachine(Exception):
    pass


@dataclass
class Entry:
    machine: Machine
    customer: str
    sla_percent: float | None  # None: the offer has no SLA
    exclusions: list[Exclusion]


@dataclass
class MachineReport:
    entry: Entry
    outcome: Outcome

    @property
    def met(self) -> bool | None:
        availability = self.outcome.availability_percent
        if self.entry.sla_percent is None or availability is None:
            return None
        return availability >= self.entry.sla_percent


def rules_of(fleet: Fleet) -> Rules:
    sla = fleet.policy.sla
    return Rules(sla.threshold_minutes, sla.credit_percent_per_minute, sla.credit_cap_percent)


def _covers(window: MaintenanceWindow, names: set[str]) -> bool:
    return MAINTENANCE_ALL in window.scope or not names.isdisjoint(window.scope)


def _maintenance(fleet: Fleet, names: set[str]) -> list[Exclusion]:
    return [
        Exclusion(to_ms(w.start), to_ms(w.end), f"planned maintenance: {w.reason}")
        for w in fleet.maintenance
        if _covers(w, names)
    ]


def zone_of(fleet: Fleet) -> ZoneInfo:
    """The provider's time zone: the report's months and the fleet's dates are days there."""
    return ZoneInfo(fleet.policy.sla.time_zone)


def _guest_entry(fleet: Fleet, guest: Guest, start: int, end: int) -> Entry | None:
    tz = zone_of(fleet)
    created = day_start_ms(guest.created, tz)
    gone = day_start_ms(guest.terminated_on, tz) if guest.terminated_on else None
    if created >= end or (gone is not None and gone <= start):
        return None
    offer = fleet.offer(guest.offer)
    host = fleet.host(guest.host)
    names = {guest.name, guest.host, *([host.datacenter] if host else [])}
    exclusions = [Exclusion(start, created, "not yet in service"), *_maintenance(fleet, names)]
    if gone is not None:
        exclusions.append(Exclusion(gone, end, "terminated (M11)"))
    if guest.state is GuestState.SUSPENDED and guest.suspended_on is not None:
        exclusions.append(Exclusion(day_start_ms(guest.suspended_on, tz), end, "suspended (M7)"))
    current = [guest.mitigation] if guest.mitigation is not None else []
    for mitigation in [*guest.past_mitigations, *current]:  # each one stays excluded (M28)
        until = to_ms(mitigation.ends_at) if mitigation.ends_at else end
        exclusions.append(Exclusion(to_ms(mitigation.since), until, "DDoS mitigation (M28)"))
    return Entry(Machine("guest", guest.name), guest.customer,
                 None if offer is None or offer.no_sla else offer.sla_percent, exclusions)


def _server_entry(fleet: Fleet, server: DedicatedServer, start: int, end: int) -> Entry | None:
    tz = zone_of(fleet)
    if server.delivered_on is None or day_start_ms(server.delivered_on, tz) >= end:
        return None
    offer = fleet.offer(server.offer)
    exclusions = [Exclusion(start, day_start_ms(server.delivered_on, tz), "not yet delivered (M12)")]
    exclusions += _maintenance(fleet, {server.name, server.datacenter})
    return Entry(Machine("server", server.name), server.customer,
                 None if offer is None or offer.no_sla else offer.sla_percent, exclusions)


def entries(fleet: Fleet, start: int, end: int, only: Sequence[str] = ()) -> list[Entry]:
    """The machines the month's report covers (in service for part of it at least), or those
    named in `only` (`UnknownMachine` for a name the fleet does not hold)."""
    known = {g.name for g in fleet.guests} | {s.name for s in fleet.dedicated_servers}
    unknown = [n for n in only if n not in known]
    if unknown:
        raise UnknownMachine(f"no guest or dedicated server named {', '.join(unknown)} in the "
                             "fleet")
    found: list[Entry | None] = [_guest_entry(fleet, g, start, end) for g in fleet.guests]
    found += [_server_entry(fleet, s, start, end) for s in fleet.dedicated_servers]
    chosen = [e for e in found if e is not None and (not only or e.machine.name in only)]
    missing = set(only) - {e.machine.name for e in chosen}
    if missing:
        raise UnknownMachine(f"{', '.join(sorted(missing))} was not in service that month")
    return chosen


def build(
    fleet: Fleet,
    prometheus: Prometheus,
    start: int,
    end: int,
    now: int,
    only: Sequence[str] = (),
    *,
    chunk_ms: int | None = None,
) -> list[MachineReport]:
    rules = rules_of(fleet)
    chosen = entries(fleet, start, end, only)
    until = min(end, now)
    extra = {} if chunk_ms is None else {"chunk_ms": chunk_ms}
    timelines = read_timelines(prometheus, [e.machine for e in chosen], start, until, rules,
                               **extra)
    reports = []
    for entry in chosen:
        raw = list(timelines[entry.machine])
        if until < end:
            raw.append(Segment(until, end, State.UNKNOWN))  # the month is not over yet
        outcome = assess(raw, start, end, rules, entry.exclusions,
                         has_sla=entry.sla_percent is not None)
        reports.append(MachineReport(entry, outcome))
    return reports


# --- forms -------------------------------------------------------------------------------------


def instant(ms: int) -> str:
    moment = from_ms(ms)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def minutes(ms: int) -> float:
    return round(ms / MINUTE_MS, 3)


def as_json(reports: Sequence[MachineReport]) -> list[dict[str, Any]]:
    """The contract other tools read: exactly these keys (docs/sla.md)."""
    out = []
    for report in reports:
        o = report.outcome
        availability = o.availability_percent
        out.append({
            "guest": report.entry.machine.name,
            "customer": report.entry.customer,
            "availability_percent": None if availability is None else round(availability, 6),
            "unavailable_minutes": minutes(o.unavailable_ms),
            "unknown_minutes": minutes(o.unknown_ms),
            "credit_percent": o.credit_percent,
            "incidents": [
                {
                    "start": instant(i.start),
                    "end": instant(i.end),
                    "minutes": minutes(i.ms),
                    "counted": i.counted,
                    "excluded_reason": i.excluded_reason,
                }
                for i in o.incidents
            ],
        })
    return out


COLUMNS = ("guest", "customer", "sla_percent", "month_minutes", "unavailable_minutes",
           "unknown_minutes", "excluded_minutes", "availability_percent", "sla_met",
           "credit_percent", "incidents", "incidents_counted")


def rows(reports: Sequence[MachineReport]) -> list[dict[str, object]]:
    """The table's and the CSV's rows: the JSON's figures, the SLA and the month's minutes."""
    out: list[dict[str, object]] = []
    for report, item in zip(reports, as_json(reports), strict=True):
        o = report.outcome
        incidents = item.pop("incidents")
        row = {**item, "sla_percent": report.entry.sla_percent,
               "month_minutes": minutes(o.month_ms), "excluded_minutes": minutes(o.excluded_ms),
               "sla_met": report.met, "incidents": len(incidents),
               "incidents_counted": sum(1 for i in incidents if i["counted"])}
        out.append({key: row[key] for key in COLUMNS})
    return out


def render_json(reports: Sequence[MachineReport]) -> str:
    return json.dumps(as_json(reports), indent=2) + "\n"


def render_csv(reports: Sequence[MachineReport]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows(reports):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def _cell(key: str, value: object) -> str:
    if value is None:
        return {"sla_percent": "no SLA", "credit_percent": "-", "sla_met": "-"}.get(key, "-")
    if key == "sla_met":
        return "met" if value else "MISSED"
    if key == "availability_percent" and isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def render_table(reports: Sequence[MachineReport], month: str, zone: str) -> str:
    heads = ("guest", "customer", "SLA %", "minutes", "unavail.", "unknown", "excluded",
             "avail. %", "SLA", "credit %", "incidents")
    lines = []
    for row in rows(reports):
        cells = [_cell(k, row[k]) for k in COLUMNS[:10]]
        cells.append(f"{row['incidents_counted']}/{row['incidents']}")
        lines.append(cells)
    widths = [max([len(h)] + [len(r[i]) for r in lines]) for i, h in enumerate(heads)]
    out = [f"SLA report for {month} (months in {zone} time; minutes; incidents counted/all)"]
    out.append("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip())
    for cells in lines:
        out.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    for report in reports:
        for inc in report.outcome.incidents:
            what = ("counted" if inc.counted else
                    f"excluded: {inc.excluded_reason}" if inc.excluded_reason else "not counted")
            out.append(f"  {report.entry.machine.name}: {instant(inc.start)} -> "
                       f"{instant(inc.end)} {minutes(inc.ms)} min, {what}")
    return "\n".join(out) + "\n"


def now_ms() -> int:
    return to_ms(dt.datetime.now(dt.UTC))
