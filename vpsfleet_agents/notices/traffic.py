"""The facts of the `traffic_throttle` notice (M8): what the traffic job knows on the host when
a guest's throttle starts. The deploy's samples (vpsfleet.notices.samples) give the same facts
from the sample fleet."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

KIND = "traffic_throttle"
PROMISE = "M8"


@dataclass(frozen=True)
class Throttle:
    machine: str  # the guest (its libvirt domain)
    counted_bytes: int  # outbound bytes counted in the cycle when the throttle started
    quota_bytes: int  # the plan's monthly volume
    throttle_kbit_s: int  # the outbound rate until the cycle ends
    plan_kbit_s: int  # the plan's rate, back when the cycle ends
    since: dt.datetime  # when the quota was reached
    cycle_end: dt.datetime  # the first instant of the next cycle
    time_zone: str  # the provider's zone, where cycles are calendar months
    support_email: str
    customer_name: str | None = None
    provider_name: str | None = None


def facts(throttle: Throttle) -> dict[str, Any]:
    """The templates' context (templates/traffic_throttle.LANG.j2)."""
    return {
        "machine": throttle.machine,
        "customer_name": throttle.customer_name,
        "provider_name": throttle.provider_name,
        "support_email": throttle.support_email,
        "promise": PROMISE,
        "counted_bytes": throttle.counted_bytes,
        "quota_bytes": throttle.quota_bytes,
        "throttle_kbit_s": throttle.throttle_kbit_s,
        "plan_kbit_s": throttle.plan_kbit_s,
        "since": throttle.since,
        "cycle_end": throttle.cycle_end,
        "time_zone": throttle.time_zone,
    }
