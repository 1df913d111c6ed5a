"""The job's metrics for the node exporter's textfile collector."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from vpsfleet_agents.textfile import Gauges

HELP = {
    "vpsfleet_traffic_outbound_bytes": "Outbound bytes counted for the guest in the current cycle (M8).",
    "vpsfleet_traffic_quota_bytes": "Outbound bytes allowed in a cycle by the guest's plan (M8).",
    "vpsfleet_traffic_throttled": "1 while the guest's quota is spent (not lifted): the job throttles it.",
    "vpsfleet_traffic_rate_ok": "1 when libvirt took the outbound rate the job wants (0: a change failed).",
    "vpsfleet_traffic_guest_ok": "1 when the guest's domain was read on the last run.",
    "vpsfleet_traffic_lifted": "1 when the guest's throttle was lifted by hand for the rest of the cycle.",
}
SINCE = "vpsfleet_traffic_throttled_since_timestamp_seconds"


@dataclass(frozen=True)
class GuestMetrics:
    guest: str
    counted_bytes: int
    quota_bytes: int
    throttled: bool
    rate_ok: bool
    guest_ok: bool
    lifted: bool = False
    throttled_since: dt.datetime | None = None  # when the quota was reached, while throttled


def value(name: str, g: GuestMetrics) -> int:
    return {
        "vpsfleet_traffic_outbound_bytes": g.counted_bytes,
        "vpsfleet_traffic_quota_bytes": g.quota_bytes,
        "vpsfleet_traffic_throttled": int(g.throttled),
        "vpsfleet_traffic_rate_ok": int(g.rate_ok),
        "vpsfleet_traffic_guest_ok": int(g.guest_ok),
        "vpsfleet_traffic_lifted": int(g.lifted),
    }[name]


def render(guests: list[GuestMetrics], now: dt.datetime, cycle_end: dt.datetime) -> Gauges:
    gauges = Gauges()
    for name, text in HELP.items():
        family = gauges.family(name, text, ["guest"])
        for g in guests:
            family.add_metric([g.guest], value(name, g))
    # Only the throttled guests have one: since when (the quota reached in this cycle).
    since = gauges.family(SINCE, "When the guest's quota was reached and its throttle began.", ["guest"])
    for g in guests:
        if g.throttled and g.throttled_since is not None:
            since.add_metric([g.guest], int(g.throttled_since.timestamp()))
    gauges.single(
        "vpsfleet_traffic_cycle_end_timestamp_seconds",
        "When the cycle ends and throttles end.",
        int(cycle_end.timestamp()),
    )
    gauges.single(
        "vpsfleet_traffic_last_run_timestamp_seconds", "When the job last ran.", int(now.timestamp())
    )
    return gauges
