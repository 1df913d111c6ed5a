"""Which event a notice announces: a stable identity, so that it is sent once.

The key names the kind, the machine (a guest with its identity: a new guest under an old name is
another guest) and the event's own identity from the fleet file (a block's number and start, a
suspension's day, a mitigation's start, a termination or delivery day). A plan change has no
date in the fleet file: its key is the guest, and the record keeps which change it announced
(`value`), so A -> B is announced once, and again after B -> A -> B.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpsfleet.deploy_changes import Change
from vpsfleet.fleet import Fleet


@dataclass(frozen=True)
class Event:
    key: str
    value: str


def _who(fleet: Fleet, change: Change) -> str:
    guest = fleet.guest(change.machine)
    return guest.identity if guest is not None else change.machine


def event_of(kind: str, fleet: Fleet, change: Change) -> Event:
    who = _who(fleet, change)
    fact = change.fact
    own = {
        "access_codes": "added",
        "smtp_block": f"{fact('block_number')}/{fact('blocked_at')}",
        "network_cut": f"{fact('suspended_on')}",
        "resume": f"{fact('suspended_on')}",
        "mitigation_start": f"{fact('since')}",
        "termination": f"{fact('terminated_on')}",
        "dedicated_available": f"{fact('delivered_on')}",
    }
    if kind == "plan_change_done":
        return Event(f"{kind}/{who}", f"{fact('old_plan')}->{fact('new_plan')}")
    if kind not in own:
        raise ValueError(f"no notice of kind {kind!r}")
    return Event(f"{kind}/{who}/{own[kind]}", own[kind])
