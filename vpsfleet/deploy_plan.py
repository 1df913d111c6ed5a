"""The steps a merge takes, from its changes: Pulumi, then Ansible, then the customer notices.

`plan` prints them for the merge request; `apply` runs them in this order (deploy_apply.py).
Nothing here runs anything: it names the stack, the hosts, the playbooks and the notices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vpsfleet.deploy_changes import DEDICATED, GUEST, Change, Kind
from vpsfleet.fleet import Fleet
from vpsfleet.schema import GuestState, OfferKind

# What `pulumi up` does to a guest for each kind of change (docs/operations-gitops.md).
PULUMI_EFFECT: dict[Kind, str] = {
    Kind.GUEST_ADDED: "creates its volume, cloud-init disk, port filter and domain",
    Kind.GUEST_TERMINATED: "removes its port filter, seed disk and domain; its volume after "
                           "`pulumi state unprotect` (M11)",
    Kind.GUEST_REINSTATED: "recreates its port filter, seed disk and domain",
    Kind.PLAN_CHANGED: "replaces its domain (new vCPU/RAM: a reboot); never the volume (M9)",
    Kind.GUEST_SUSPENDED: "redefines its port filter: management networks only (M7)",
    Kind.GUEST_RESUMED: "redefines its port filter back (M7)",
    Kind.SMTP_BLOCK_PLACED: "redefines its port filter: outbound TCP 25 dropped (M6)",
    Kind.SMTP_BLOCK_LIFTED: "redefines its port filter: port 25 open again (M6)",
    Kind.MITIGATION_STARTED: "redefines its port filter: the mitigation profile (M28)",
    Kind.MITIGATION_ENDED: "redefines its port filter back (M28)",
}
# Guest fields Pulumi reads (the rest is Ansible's or the scripts').
PULUMI_FIELDS: dict[str, str] = {
    "filter": "redefines its port filter",
    "host": "recreates its domain on the new host",
    "image": "replaces its seed disk and domain",
    "created": "replaces its seed disk (new identity: new credentials)",
}
# Kinds that change what a backup store holds for a guest: accounts, quota (in plan disks),
# states and erasure dates (M11, M20-M22).
STORE_KINDS = frozenset({
    Kind.GUEST_ADDED, Kind.GUEST_REMOVED, Kind.GUEST_TERMINATED, Kind.GUEST_REINSTATED,
    Kind.GUEST_SUSPENDED, Kind.GUEST_RESUMED, Kind.PLAN_CHANGED,
})
STORE_FIELDS = frozenset({"backup", "created", "customer", "offer", "host"})
# The notices the contracts call for (issue 13), by kind of change.
NOTICE: dict[Kind, str] = {
    Kind.GUEST_ADDED: "access_codes",  # M4
    Kind.SMTP_BLOCK_PLACED: "smtp_block",  # M6
    Kind.GUEST_SUSPENDED: "network_cut",  # M7
    Kind.GUEST_RESUMED: "resume",  # M7
    Kind.MITIGATION_STARTED: "mitigation_start",  # M28
    Kind.GUEST_TERMINATED: "termination",  # M11
    Kind.DEDICATED_DELIVERED: "dedicated_available",  # M12
    Kind.PLAN_CHANGED: "plan_change_done",  # M9
}


@dataclass(frozen=True)
class PulumiReason:
    machine: str
    effect: str


@dataclass(frozen=True)
class PulumiStep:
    stack: str
    stack_file: str
    reasons: tuple[PulumiReason, ...]


@dataclass(frozen=True)
class PlaybookRun:
    playbook: str
    limit: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class Notice:
    kind: str
    machine: str
    customer: str
    email: str
    language: str
    promise: str


@dataclass(frozen=True)
class DeployPlan:
    environment: str
    source: str
    from_rev: str
    to_rev: str
    changes: tuple[Change, ...]
    pulumi: PulumiStep | None
    playbooks: tuple[PlaybookRun, ...]
    notices: tuple[Notice, ...]

    @property
    def nothing_to_do(self) -> bool:
        return not self.changes


def _pulumi(fleet: Fleet, changes: tuple[Change, ...]) -> PulumiStep | None:
    reasons: list[PulumiReason] = []
    for change in changes:
        if change.machine_kind != GUEST:
            continue  # dedicated servers are not libvirt guests
        if change.kind in PULUMI_EFFECT:
            reasons.append(PulumiReason(change.machine, PULUMI_EFFECT[change.kind]))
        for field in change.fields:
            if field.name in PULUMI_FIELDS:
                reasons.append(PulumiReason(change.machine, PULUMI_FIELDS[field.name]))
    if not reasons:
        return None
    stack = fleet.environment
    return PulumiStep(stack, f"pulumi/Pulumi.{stack}.yaml", tuple(dict.fromkeys(reasons)))


def _monitor_targets(fleet: Fleet) -> set[tuple[str, ...]]:
    """What the monitors probe (role monitor, from the inventory): active guests and delivered
    dedicated servers, with their customer and address (M16, M26)."""
    targets: set[tuple[str, ...]] = set()
    for guest in fleet.guests:
        if guest.state is GuestState.ACTIVE and guest.ipv4 is not None:
            offer = fleet.offer(guest.offer)
            managed = offer is not None and offer.kind is OfferKind.MANAGED_VPS
            targets.add(("guest", guest.name, guest.customer, str(guest.ipv4), str(managed)))
    for server in fleet.dedicated_servers:
        if server.delivered_on is not None and server.ipv4 is not None:
            targets.add(("server", server.name, server.customer, str(server.ipv4), "False"))
    return targets


# What a dedicated server's edge router enforces (edge_rules.py, role edge_router): its record's
# network kinds and fields, as Pulumi's port filter does for a guest.
EDGE_KINDS = frozenset({
    Kind.GUEST_SUSPENDED, Kind.GUEST_RESUMED, Kind.SMTP_BLOCK_PLACED, Kind.SMTP_BLOCK_LIFTED,
    Kind.MITIGATION_STARTED, Kind.MITIGATION_ENDED, Kind.DEDICATED_ADDED, Kind.DEDICATED_REMOVED,
})
EDGE_FIELDS = frozenset({"filter", "pro", "ipv4", "offer", "datacenter"})


def _edge_routers(before: Fleet, after: Fleet, changes: tuple[Change, ...]) -> set[str]:
    """The edge routers whose ruleset changes: those of the datacenters (before and after) of
    the dedicated servers whose network record a change touches."""
    routers: set[str] = set()
    for change in changes:
        if change.machine_kind != DEDICATED or not (
                change.kind in EDGE_KINDS or any(f.name in EDGE_FIELDS for f in change.fields)):
            continue
        for fleet in (before, after):
            server = next((d for d in fleet.dedicated_servers if d.name == change.machine), None)
            place = fleet.datacenter(server.datacenter) if server is not None else None
            if place is not None and place.edge_router is not None:
                routers.add(place.edge_router.name)
    return routers


# What a hypervisor's traffic job reads of its guests (role hypervisor's traffic.json, M8): which
# guests it carries, their plans (quota, throttle) and customers.
HOST_KINDS = frozenset({
    Kind.GUEST_ADDED, Kind.GUEST_REMOVED, Kind.GUEST_TERMINATED, Kind.GUEST_REINSTATED,
    Kind.PLAN_CHANGED,
})
HOST_FIELDS = frozenset({"host", "customer", "created"})


def _hypervisors(before: Fleet, after: Fleet, changes: tuple[Change, ...]) -> set[str]:
    """The reachable hypervisors (with an address: group hypervisors_reachable) whose guests'
    list or plans a change touches, before and after (a guest may move)."""
    hosts: set[str] = set()
    for change in changes:
        if change.machine_kind != GUEST or not (
                change.kind in HOST_KINDS or any(f.name in HOST_FIELDS for f in change.fields)):
            continue
        for fleet in (before, after):
            guest = fleet.guest(change.machine)
            host = fleet.host(guest.host) if guest is not None else None
            if host is not None and host.ipv4 is not None:
                hosts.add(host.name)
    return hosts


def _touches_store(change: Change) -> bool:
    return change.kind in STORE_KINDS or any(f.name in STORE_FIELDS for f in change.fields)


def _stores(before: Fleet, after: Fleet, changes: tuple[Change, ...]) -> set[str]:
    """The stores whose accounts change: those of the backed-up guests a change touches,
    before and after (a guest may change store)."""
    stores: set[str] = set()
    for change in changes:
        if change.machine_kind != GUEST or not _touches_store(change):
            continue
        for fleet in (before, after):
            guest = fleet.guest(change.machine)
            if guest is not None and fleet.backup_enabled(guest):
                store = fleet.store_for(guest)
                if store is not None:
                    stores.add(store.name)
    return stores


def _configured_by_site(fleet: Fleet, change: Change) -> bool:
    """site.yml configures managed guests that run and dedicated servers not yet delivered."""
    if change.machine_kind == DEDICATED:
        server = next((d for d in fleet.dedicated_servers if d.name == change.machine), None)
        return server is not None and server.delivered_on is None and server.ipv4 is not None
    guest = fleet.guest(change.machine)
    if guest is None or guest.state is GuestState.TERMINATED:
        return False
    offer = fleet.offer(guest.offer)
    return offer is not None and offer.kind is OfferKind.MANAGED_VPS


def _playbooks(before: Fleet, after: Fleet, changes: tuple[Change, ...]) -> list[PlaybookRun]:
    runs = []
    machines = sorted({c.machine for c in changes if _configured_by_site(after, c)})
    stores = sorted(_stores(before, after, changes))
    monitors = (sorted(m.name for m in after.monitors)
                if _monitor_targets(before) != _monitor_targets(after) else [])
    routers = sorted(_edge_routers(before, after, changes))
    hypervisors = sorted(_hypervisors(before, after, changes))
    limit = tuple(dict.fromkeys(hypervisors + machines + stores + monitors + routers))
    if limit:
        why = []
        if hypervisors:
            why.append("hypervisors whose guests or plans changed (traffic quota job, M8)")
        if machines:
            why.append("changed machines")
        if routers:
            why.append("edge routers of changed dedicated servers (M5, M6, M7, M28)")
        if stores:
            why.append("backup stores of changed backup clients (accounts, quotas, erasures)")
        if monitors:
            why.append("monitors (their targets changed)")
        runs.append(PlaybookRun("site.yml", limit, "; ".join(why)))
    handover = []
    for change in changes:
        if change.kind is Kind.DEDICATED_DELIVERED:
            handover.append(change.machine)
        elif change.kind is Kind.GUEST_ADDED and change.fact("state") == GuestState.ACTIVE.value:
            guest = after.guest(change.machine)
            offer = after.offer(guest.offer) if guest else None
            if offer is not None and offer.kind is OfferKind.UNMANAGED_VPS:
                handover.append(change.machine)
    if handover:
        runs.append(PlaybookRun("handover.yml", tuple(handover),
                                "new unmanaged guests and delivered dedicated servers go to "
                                "their customers (M12, M13)"))
    return runs


def _notices(after: Fleet, changes: tuple[Change, ...]) -> list[Notice]:
    notices = []
    servers = {d.name: d for d in after.dedicated_servers}
    for change in changes:
        kind = NOTICE.get(change.kind)
        if kind is None:
            continue
        if kind == "access_codes" and change.fact("state") != GuestState.ACTIVE.value:
            continue
        owner = after.guest(change.machine) if change.machine_kind == GUEST \
            else servers.get(change.machine)
        customer = after.customer(owner.customer) if owner is not None else None
        if customer is None:
            continue
        notices.append(Notice(kind, change.machine, customer.id, customer.email,
                              customer.language, change.promise))
    return notices


def build_plan(before: Fleet, after: Fleet, changes: tuple[Change, ...], *, source: str,
               from_rev: str, to_rev: str) -> DeployPlan:
    return DeployPlan(
        environment=after.environment, source=source, from_rev=from_rev, to_rev=to_rev,
        changes=changes, pulumi=_pulumi(after, changes),
        playbooks=tuple(_playbooks(before, after, changes)),
        notices=tuple(_notices(after, changes)),
    )


# --- output --------------------------------------------------------------------------------------


def _describe(change: Change) -> str:
    details = [f"{k} {v}" for k, v in change.facts]
    details += [f"{f.name}: {f.old} -> {f.new}" for f in change.fields]
    text = f"{change.machine_kind} {change.machine}: {change.kind.value} ({change.promise})"
    return f"{text}: {', '.join(details)}" if details else text


def render_text(plan: DeployPlan) -> str:
    head = f"deploy plan for {plan.environment} ({plan.source}), {plan.from_rev} -> {plan.to_rev}"
    if plan.nothing_to_do:
        return f"{head}\nnothing to do: no machine changes."
    lines = [head, "", f"Changes ({len(plan.changes)}):"]
    lines += [f"  - {_describe(c)}" for c in plan.changes]
    step = 1
    lines += ["", "Steps, in order:"]
    if plan.pulumi is not None:
        lines.append(f"  {step}. pulumi up, stack {plan.pulumi.stack} ({plan.pulumi.stack_file}):")
        lines += [f"       - {r.machine}: {r.effect}" for r in plan.pulumi.reasons]
    else:
        lines.append(f"  {step}. pulumi: no change of the stack {plan.environment}")
    for run in plan.playbooks:
        step += 1
        lines.append(f"  {step}. ansible-playbook playbooks/{run.playbook} --limit "
                     f"{','.join(run.limit)}")
        lines.append(f"       ({run.why})")
    if not plan.playbooks:
        step += 1
        lines.append(f"  {step}. ansible: no host to configure")
    step += 1
    if plan.notices:
        lines.append(f"  {step}. customer notices ({len(plan.notices)}):")
        lines += [f"       - {n.kind} for {n.machine} to {n.customer} <{n.email}>, in "
                  f"{n.language} ({n.promise})" for n in plan.notices]
    else:
        lines.append(f"  {step}. customer notices: none")
    return "\n".join(lines)


def as_json(plan: DeployPlan) -> dict[str, Any]:
    """Stable keys for the pipeline (docs/deploy.md)."""
    return {
        "environment": plan.environment,
        "fleet": plan.source,
        "from": plan.from_rev,
        "to": plan.to_rev,
        "nothing_to_do": plan.nothing_to_do,
        "changes": [
            {
                "machine": c.machine,
                "machine_kind": c.machine_kind,
                "kind": c.kind.value,
                "promise": c.promise,
                "facts": dict(c.facts),
                "fields": [{"name": f.name, "old": f.old, "new": f.new} for f in c.fields],
            }
            for c in plan.changes
        ],
        "pulumi": None if plan.pulumi is None else {
            "stack": plan.pulumi.stack,
            "stack_file": plan.pulumi.stack_file,
            "reasons": [{"machine": r.machine, "effect": r.effect} for r in plan.pulumi.reasons],
        },
        "ansible": [
            {"playbook": r.playbook, "limit": list(r.limit), "why": r.why} for r in plan.playbooks
        ],
        "notices": [
            {"kind": n.kind, "machine": n.machine, "customer": n.customer, "email": n.email,
             "language": n.language, "promise": n.promise}
            for n in plan.notices
        ],
    }


def render_json(plan: DeployPlan) -> str:
    return json.dumps(as_json(plan), indent=2, sort_keys=True)
