"""Counting a guest's outbound bytes in a cycle from a counter that resets.

libvirt's interface counter starts from zero whenever the guest's tap device is created: at each
domain start (a restart, a host reboot) and at an interface's hot-plug. The job keeps, per guest,
the last counter it read and its identity (host boot and domain run); each run adds what the
counter grew since. A counter with another identity, or lower than the last reading, started
afresh after that reading: all of it is new traffic. Only the traffic between the last run and
a reset is never seen (the timer's interval bounds it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Counter:
    identity: str  # which counter: host boot and domain run; a new identity started at zero
    outbound_bytes: int


@dataclass(frozen=True)
class Ledger:
    """One guest in one cycle."""

    counted_bytes: int = 0  # outbound bytes counted in this cycle
    counter: Counter | None = None  # the last counter read, in this cycle or the one before
    throttled_at: str | None = None  # when the quota was reached in this cycle (ISO 8601)
    notified: bool = False  # the customer and operations were told of the throttle
    lifted_at: str | None = None  # throttle lifted by hand for the rest of this cycle


def grown(previous: Counter | None, current: Counter) -> int:
    """Bytes the guest sent between two readings.

    With no previous reading (the job sees the guest for the first time) nothing is counted: the
    counter may hold traffic of an earlier cycle, and the customer gets the benefit of the doubt.
    """
    if previous is None:
        return 0
    if previous.identity != current.identity or current.outbound_bytes < previous.outbound_bytes:
        return current.outbound_bytes
    return current.outbound_bytes - previous.outbound_bytes


def record(ledger: Ledger, current: Counter) -> Ledger:
    return replace(
        ledger, counted_bytes=ledger.counted_bytes + grown(ledger.counter, current), counter=current
    )


def next_cycle(ledger: Ledger) -> Ledger:
    """The guest's ledger at the start of a new cycle: nothing counted, the throttle gone, and the
    last counter kept so that traffic since the last run is counted in the new cycle."""
    return Ledger(counter=ledger.counter)


def over_quota(ledger: Ledger, quota_bytes: int) -> bool:
    """Whether the guest must be throttled now: quota spent and not lifted by hand."""
    return ledger.counted_bytes >= quota_bytes and ledger.lifted_at is None
