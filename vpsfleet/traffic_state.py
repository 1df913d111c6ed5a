"""The traffic quota's state per guest (M8), as the monitor's Prometheus holds it: what each
hypervisor's traffic job exports through its node exporter's textfile collector
(vpsfleet_agents/traffic/metrics.py), read for `vpsfleet show --traffic`.

One instant query for every `vpsfleet_traffic_*` series; grouped by the `guest` label. Whatever
goes wrong on the way (nothing listening, not a Prometheus, no such series) becomes one line of
the table's place, never a traceback: the rest of `show` is what the fleet file declares.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field

from vpsfleet.fleet import Fleet
from vpsfleet.prometheus import Labels, Prometheus, PrometheusBadAnswer, PrometheusUnreachable
from vpsfleet_agents.traffic.notice import amount

PREFIX = "vpsfleet_traffic_"
QUERY = '{__name__=~"vpsfleet_traffic_.+"}'
# The job runs every five minutes (vpsfleet-traffic.timer): a last run older than this is stale.
STALE_AFTER = dt.timedelta(minutes=15)
TIMEOUT = 10.0  # seconds: show waits for no monitor longer than that


@dataclass
class GuestTraffic:
    guest: str
    source: str  # the scraped host (its `host` label, else the scrape's `instance`)
    outbound_bytes: float | None = None
    quota_bytes: float | None = None
    throttled: bool | None = None
    since: dt.datetime | None = None
    lifted: bool = False
    rate_ok: bool | None = None
    guest_ok: bool | None = None


@dataclass
class TrafficState:
    url: str
    at: dt.datetime
    guests: dict[str, list[GuestTraffic]] = field(default_factory=dict)
    last_runs: dict[str, dt.datetime] = field(default_factory=dict)  # source -> last run
    cycle_end: dt.datetime | None = None


def _source(labels: Labels) -> str:
    return labels.get("host") or labels.get("instance") or "?"


def _instant(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


def read(prometheus: Prometheus, at: dt.datetime) -> TrafficState:
    """Every traffic series at `at`. Raises PrometheusUnreachable or PrometheusBadAnswer."""
    state = TrafficState(prometheus.url, at)
    per_source: dict[tuple[str, str], GuestTraffic] = {}
    for labels, value in prometheus.vector(QUERY, round(at.timestamp() * 1000)):
        name = labels.get("__name__", "").removeprefix(PREFIX)
        source = _source(labels)
        if name == "last_run_timestamp_seconds":
            state.last_runs[source] = max(_instant(value), state.last_runs.get(source, _instant(0)))
            continue
        if name == "cycle_end_timestamp_seconds":
            state.cycle_end = _instant(value)
            continue
        guest = labels.get("guest")
        if guest is None:
            continue
        entry = per_source.setdefault((guest, source), GuestTraffic(guest, source))
        if name == "outbound_bytes":
            entry.outbound_bytes = value
        elif name == "quota_bytes":
            entry.quota_bytes = value
        elif name == "throttled":
            entry.throttled = value == 1
        elif name == "throttled_since_timestamp_seconds":
            entry.since = _instant(value)
        elif name == "lifted":
            entry.lifted = value == 1
        elif name == "rate_ok":
            entry.rate_ok = value == 1
        elif name == "guest_ok":
            entry.guest_ok = value == 1
    for (guest, _source_name), entry in sorted(per_source.items()):
        state.guests.setdefault(guest, []).append(entry)
    return state


def _moment(value: dt.datetime) -> str:
    return f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def _status(entry: GuestTraffic) -> str:
    if entry.throttled:
        words = f"THROTTLED since {_moment(entry.since)}" if entry.since else "THROTTLED"
    elif entry.lifted:
        words = "over quota, throttle lifted by hand"
    elif entry.throttled is None:
        words = "incomplete metrics"
    else:
        words = "normal"
    if entry.guest_ok is False:
        words += "; domain not read on the last run"
    if entry.rate_ok is False:
        words += "; libvirt refused a rate change"
    return words


def rows(fleet: Fleet, state: TrafficState) -> list[tuple[str, ...]]:
    """One row per live guest of the fleet (and per host that reports it)."""
    out: list[tuple[str, ...]] = []
    for guest in fleet.live_guests():
        entries = state.guests.get(guest.name)
        if not entries:
            out.append(
                (guest.name, guest.host, "-", "-", "-", "no data (job not run, or its host not scraped)")
            )
            continue
        for entry in entries:
            sent, quota = entry.outbound_bytes, entry.quota_bytes
            used = f"{100 * sent / quota:.1f}%" if sent is not None and quota else "-"
            status = _status(entry)
            if len(entries) > 1:
                status += f"; also reported by {len(entries) - 1} other host(s)"
            out.append(
                (
                    guest.name,
                    entry.source,
                    amount(int(sent)) if sent is not None else "-",
                    amount(int(quota)) if quota is not None else "-",
                    used,
                    status,
                )
            )
    return out


def header(state: TrafficState, time_zone: str) -> list[str]:
    """Where and when it was read, when the cycle ends (local midnight in the provider's zone,
    where cycles are calendar months), and each host's last run of the job."""
    lines = [f"Traffic this cycle (M8), from {state.url} at {_moment(state.at)}"]
    if state.cycle_end is not None:
        local = state.cycle_end.astimezone(zoneinfo.ZoneInfo(time_zone))
        lines[0] += f"; the cycle ends {local:%Y-%m-%d %H:%M} {time_zone}"
    for source, when in sorted(state.last_runs.items()):
        late = state.at - when > STALE_AFTER
        lines.append(
            f"  traffic job on {source} last ran {_moment(when)}"
            + (" (STALE: check its timer)" if late else "")
        )
    return lines


def unknown_guests(fleet: Fleet, state: TrafficState) -> Sequence[str]:
    live = {g.name for g in fleet.live_guests()}
    return sorted(set(state.guests) - live)


def failure_line(url: str, error: PrometheusUnreachable | PrometheusBadAnswer) -> str:
    if isinstance(error, PrometheusUnreachable):
        return f"Traffic this cycle (M8): not shown, {error} (the monitor is down or unreachable from here)"
    return f"Traffic this cycle (M8): not shown, {url}: {error}"
