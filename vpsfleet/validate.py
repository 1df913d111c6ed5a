"""Cross-checks across the fleet: references, names, addresses, capacity, offsite backups.

Each check appends to one list of problems; none stops at the first. The fleet given here holds
only the items that passed the schema, so a bad item is reported once, by the schema.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from vpsfleet.capacity import usage_by_host
from vpsfleet.fleet import Fleet
from vpsfleet.problems import Problem, item_path
from vpsfleet.schema import GuestState, OfferKind


@dataclass(frozen=True)
class AddressClaim:
    location: str
    address: ipaddress.IPv4Address
    owner: str
    datacenter: str | None  # None: need not be in a pool (hosts, stores, monitors)


def cross_check(
    fleet: Fleet, *, today: dt.date, unallocated_ok: frozenset[str] = frozenset()
) -> list[Problem]:
    problems: list[Problem] = []
    problems += _duplicate_names(fleet)
    problems += _pools(fleet)
    problems += _references(fleet)
    claims, missing = _address_claims(fleet, unallocated_ok)
    problems += missing
    problems += _addresses(fleet, claims, today)
    problems += _capacity(fleet)
    problems += _backup_stores(fleet)
    problems += _accounts(fleet)
    problems += _maintenance(fleet)
    return problems


MAINTENANCE_ALL = "all"


def _maintenance(fleet: Fleet) -> list[Problem]:
    """A maintenance window's scope names machines, hosts or datacenters that exist (a typo
    would leave an outage counted against the provider, or a window silently covering nothing)."""
    problems = []
    known = (
        {g.name for g in fleet.guests}
        | {h.name for h in fleet.hosts}
        | {d.name for d in fleet.dedicated_servers}
        | {d.code for d in fleet.datacenters}
    )
    invalid = set().union(*(fleet.declared_invalid.get(s, set()) for s in
                            ("guests", "hosts", "dedicated_servers", "datacenters")))
    for i, window in enumerate(fleet.maintenance):
        at = fleet.where("maintenance", i)
        for j, name in enumerate(window.scope):
            if name == MAINTENANCE_ALL or name in known or name in invalid:
                continue
            problems.append(
                Problem(item_path("maintenance", at, "scope", j),
                        f"{name!r} is no guest, host, dedicated server or datacenter (or all)")
            )
    return problems


def _duplicate_names(fleet: Fleet) -> list[Problem]:
    problems = []
    keyed = (("datacenters", "code"), ("plans", "name"), ("offers", "name"), ("customers", "id"))
    for section, key in keyed:
        seen: dict[str, str] = {}
        for i, item in enumerate(getattr(fleet, section)):
            name = getattr(item, key)
            where = item_path(section, fleet.where(section, i), key)
            if name in seen:
                problems.append(Problem(where, f"{name!r} is already declared at {seen[name]}"))
            else:
                seen[name] = where
    # Machines share one hostname space: a guest and a host may not have the same name.
    machines: dict[str, str] = {}
    for section in ("hosts", "guests", "dedicated_servers", "backup_stores", "monitors"):
        for i, item in enumerate(getattr(fleet, section)):
            where = item_path(section, fleet.where(section, i), "name")
            if item.name in machines:
                problems.append(
                    Problem(where, f"{item.name!r} is already used at {machines[item.name]}")
                )
            else:
                machines[item.name] = where
    return problems


def _pools(fleet: Fleet) -> list[Problem]:
    problems = []
    pool_names: dict[str, str] = {}
    networks: list[tuple[ipaddress.IPv4Network, str]] = []
    for i, dc in enumerate(fleet.datacenters):
        at = fleet.where("datacenters", i)
        for j, pool in enumerate(dc.pools):
            where = item_path("datacenters", at, "pools", j)
            if pool.name in pool_names:
                problems.append(
                    Problem(f"{where}.name", f"pool {pool.name!r} is already declared at "
                            f"{pool_names[pool.name]}")
                )
            pool_names.setdefault(pool.name, f"{where}.name")
            for other, other_where in networks:
                if pool.network.overlaps(other):
                    problems.append(
                        Problem(f"{where}.network", f"{pool.network} overlaps {other} "
                                f"({other_where})")
                    )
            networks.append((pool.network, f"{where}.network"))
            if pool.gateway not in pool.network:
                problems.append(
                    Problem(f"{where}.gateway", f"{pool.gateway} is outside {pool.network}")
                )
            elif pool.gateway in (pool.network.network_address, pool.network.broadcast_address):
                problems.append(
                    Problem(f"{where}.gateway", f"{pool.gateway} is not a usable host address "
                            f"of {pool.network}")
                )
            for k, reserved in enumerate(pool.reserved):
                if reserved not in pool.network:
                    problems.append(
                        Problem(f"{where}.reserved[{k}]", f"{reserved} is outside {pool.network}")
                    )
    return problems


# The section an unknown reference points into, for the names declared there but invalid.
SECTION_OF_KIND = {
    "datacenter": "datacenters",
    "host": "hosts",
    "plan": "plans",
    "offer": "offers",
    "customer": "customers",
    "backup store": "backup_stores",
}


def _unknown(fleet: Fleet, where: str, kind: str, name: str) -> list[Problem]:
    """An unknown reference, unless the item it names is declared but failed its own checks:
    that item's problem is already reported, once."""
    if name in fleet.declared_invalid.get(SECTION_OF_KIND.get(kind, ""), set()):
        return []
    return [Problem(where, f"unknown {kind} {name!r}")]


def _references(fleet: Fleet) -> list[Problem]:
    problems = []
    for i, hypervisor in enumerate(fleet.hosts):
        if fleet.datacenter(hypervisor.datacenter) is None:
            where = item_path("hosts", fleet.where("hosts", i), "datacenter")
            problems += _unknown(fleet, where, "datacenter", hypervisor.datacenter)
    profiles = fleet.policy.mitigation.profiles
    for i, guest in enumerate(fleet.guests):
        at = fleet.where("guests", i)
        if fleet.customer(guest.customer) is None:
            problems += _unknown(fleet, item_path("guests", at, "customer"), "customer",
                                     guest.customer)
        if fleet.plan(guest.plan) is None:
            problems += _unknown(fleet, item_path("guests", at, "plan"), "plan", guest.plan)
        offer = fleet.offer(guest.offer)
        if offer is None:
            problems += _unknown(fleet, item_path("guests", at, "offer"), "offer", guest.offer)
        elif offer.kind is OfferKind.DEDICATED:
            problems.append(
                Problem(item_path("guests", at, "offer"),
                        f"{guest.offer!r} is a dedicated-server offer; a guest needs a VPS offer")
            )
        host = fleet.host(guest.host)
        if host is None:
            problems += _unknown(fleet, item_path("guests", at, "host"), "host", guest.host)
        elif guest.image not in host.images:
            problems.append(
                Problem(item_path("guests", at, "image"),
                        f"image {guest.image!r} is not on host {host.name} "
                        f"(it has {', '.join(sorted(host.images))})")
            )
        if (
            offer is not None
            and guest.backup.enabled
            and offer.backup_retention_days is None
        ):
            problems.append(
                Problem(item_path("guests", at, "backup", "enabled"),
                        f"offer {offer.name} has no backup_retention_days: a guest cannot have "
                        "backups that nothing ever expires (M22)")
            )
        if guest.mitigation and guest.mitigation.profile not in profiles:
            where = item_path("guests", at, "mitigation", "profile")
            problems += _unknown(fleet, where, "mitigation profile", guest.mitigation.profile)
        if guest.pro is not None and guest.pro.mitigation_profile not in (None, *profiles):
            where = item_path("guests", at, "pro", "mitigation_profile")
            problems += _unknown(fleet, where, "mitigation profile", str(guest.pro.mitigation_profile))
        if guest.backup.store is not None:
            store = fleet.backup_store(guest.backup.store)
            where = item_path("guests", at, "backup", "store")
            if store is None:
                problems += _unknown(fleet, where, "backup store", guest.backup.store)
            elif host is not None and store.datacenter == host.datacenter:
                problems.append(
                    Problem(where, f"store {store.name} is in {store.datacenter}, the guest's own "
                            "datacenter: backups must be offsite (M20)")
                )
        elif (
            host is not None
            and guest.state is not GuestState.TERMINATED
            and fleet.datacenter(host.datacenter) is not None
            and fleet.backup_enabled(guest)
            and fleet.store_for(guest) is None
        ):
            problems.append(
                Problem(item_path("guests", at),
                        f"no backup store serves datacenter {host.datacenter} from another "
                        "datacenter (M20)")
            )
    for i, server in enumerate(fleet.dedicated_servers):
        at = fleet.where("dedicated_servers", i)
        if fleet.datacenter(server.datacenter) is None:
            problems += _unknown(fleet, item_path("dedicated_servers", at, "datacenter"),
                                     "datacenter", server.datacenter)
        if fleet.customer(server.customer) is None:
            problems += _unknown(fleet, item_path("dedicated_servers", at, "customer"), "customer",
                                     server.customer)
        offer = fleet.offer(server.offer)
        if offer is None:
            problems += _unknown(fleet, item_path("dedicated_servers", at, "offer"), "offer",
                                     server.offer)
        elif offer.kind is not OfferKind.DEDICATED:
            problems.append(
                Problem(item_path("dedicated_servers", at, "offer"),
                        f"{server.offer!r} is a VPS offer; a dedicated server needs a dedicated "
                        "offer")
            )
        # M28 at the edge router (edge_rules.py): the same profile checks as a guest's.
        if server.mitigation and server.mitigation.profile not in profiles:
            where = item_path("dedicated_servers", at, "mitigation", "profile")
            problems += _unknown(fleet, where, "mitigation profile", server.mitigation.profile)
        if server.pro is not None and server.pro.mitigation_profile not in (None, *profiles):
            where = item_path("dedicated_servers", at, "pro", "mitigation_profile")
            problems += _unknown(fleet, where, "mitigation profile",
                                 str(server.pro.mitigation_profile))
    for i, monitor in enumerate(fleet.monitors):
        if fleet.datacenter(monitor.datacenter) is None:
            problems += _unknown(fleet, item_path("monitors", fleet.where("monitors", i),
                                               "datacenter"), "datacenter", monitor.datacenter)
    return problems


def _address_claims(
    fleet: Fleet, unallocated_ok: frozenset[str]
) -> tuple[list[AddressClaim], list[Problem]]:
    claims: list[AddressClaim] = []
    problems: list[Problem] = []
    for i, host in enumerate(fleet.hosts):
        if host.ipv4 is not None:
            where = item_path("hosts", fleet.where("hosts", i), "ipv4")
            claims.append(AddressClaim(where, host.ipv4, f"host {host.name}", None))
    for i, guest in enumerate(fleet.guests):
        where = item_path("guests", fleet.where("guests", i), "ipv4")
        if guest.ipv4 is None:
            if guest.state is not GuestState.TERMINATED and guest.name not in unallocated_ok:
                problems.append(
                    Problem(where, "no IPv4 address yet: run `vpsfleet ipam allocate "
                            f"{fleet.environment} {guest.name}` (M3)")
                )
            continue
        claims.append(
            AddressClaim(where, guest.ipv4, f"guest {guest.name}", fleet.guest_datacenter(guest))
        )
    for i, server in enumerate(fleet.dedicated_servers):
        if server.ipv4 is not None:
            where = item_path("dedicated_servers", fleet.where("dedicated_servers", i), "ipv4")
            claims.append(AddressClaim(where, server.ipv4, f"dedicated server {server.name}",
                                       server.datacenter))
    for i, store in enumerate(fleet.backup_stores):
        where = item_path("backup_stores", fleet.where("backup_stores", i), "address")
        claims.append(AddressClaim(where, store.address, f"backup store {store.name}", None))
    for i, monitor in enumerate(fleet.monitors):
        where = item_path("monitors", fleet.where("monitors", i), "address")
        claims.append(AddressClaim(where, monitor.address, f"monitor {monitor.name}", None))
    return claims, problems


def _addresses(fleet: Fleet, claims: list[AddressClaim], today: dt.date) -> list[Problem]:
    problems = []
    first_claim: dict[ipaddress.IPv4Address, AddressClaim] = {}
    quarantine_days = dt.timedelta(days=fleet.policy.ipv4_quarantine_days)
    quarantined = fleet.latest_releases
    management = list(enumerate(fleet.provider.management_networks))
    for claim in claims:
        address = claim.address
        for k, network in management:
            if address in network:
                problems.append(
                    Problem(claim.location, f"{address} is inside management network {network} "
                            f"(provider.management_networks[{k}]): a suspended guest still "
                            "reaches it (M7); no machine may have an address there")
                )
        if address in first_claim:
            other = first_claim[address]
            problems.append(
                Problem(claim.location, f"{address} is already given to {other.owner} at "
                        f"{other.location} (M3)")
            )
        else:
            first_claim[address] = claim
        found = fleet.pool_of(address)
        if found is None:
            if claim.datacenter is not None and fleet.datacenter(claim.datacenter) is not None:
                problems.append(
                    Problem(claim.location, f"{address} is outside every pool of datacenter "
                            f"{claim.datacenter}")
                )
        else:
            dc, pool = found
            if (
                claim.datacenter is not None
                and fleet.datacenter(claim.datacenter) is not None
                and dc.code != claim.datacenter
            ):
                problems.append(
                    Problem(claim.location, f"{address} belongs to pool {pool.name} of datacenter "
                            f"{dc.code}, but the {claim.owner} runs in {claim.datacenter}: "
                            "addresses are geolocated (M3)")
                )
            if address == pool.network.network_address:
                problems.append(Problem(claim.location, f"{address} is the network address of "
                                        f"pool {pool.name}"))
            elif address == pool.network.broadcast_address:
                problems.append(Problem(claim.location, f"{address} is the broadcast address of "
                                        f"pool {pool.name}"))
            elif address == pool.gateway:
                problems.append(Problem(claim.location, f"{address} is the gateway of pool "
                                        f"{pool.name}"))
            elif address in pool.reserved:
                problems.append(Problem(claim.location, f"{address} is reserved in pool "
                                        f"{pool.name}"))
        released = quarantined.get(address)
        if released is not None and released.released_on + quarantine_days > today:
            until = released.released_on + quarantine_days
            problems.append(
                Problem(claim.location, f"{address} was released from {released.guest} on "
                        f"{released.released_on} and stays in quarantine until {until}")
            )
    return problems


def _capacity(fleet: Fleet) -> list[Problem]:
    problems = []
    usages = usage_by_host(fleet)
    for i, host in enumerate(fleet.hosts):
        usage = usages[host.name]
        where = item_path("hosts", fleet.where("hosts", i), "capacity")
        if usage.vcpu > usage.vcpu_limit:
            problems.append(
                Problem(f"{where}.vcpu", f"guests need {usage.vcpu} vCPU but {host.name} offers "
                        f"{usage.vcpu_limit:g} ({host.capacity.vcpu} x overcommit "
                        f"{host.overcommit.cpu:g}) (M2)")
            )
        if usage.ram_mb > usage.ram_limit_mb:
            problems.append(
                Problem(f"{where}.ram_mb", f"guests need {usage.ram_mb} MB of RAM but {host.name} "
                        f"offers {usage.ram_limit_mb:g} ({host.capacity.ram_mb} x overcommit "
                        f"{host.overcommit.ram:g}) (M2)")
            )
        if usage.disk_gb > host.capacity.disk_gb:
            problems.append(
                Problem(f"{where}.disk_gb", f"guests need {usage.disk_gb} GB of disk but "
                        f"{host.name} has {host.capacity.disk_gb}: disk is never overcommitted (M2)")
            )
    return problems


def _backup_stores(fleet: Fleet) -> list[Problem]:
    problems = []
    for i, store in enumerate(fleet.backup_stores):
        at = fleet.where("backup_stores", i)
        if fleet.datacenter(store.datacenter) is None:
            problems += _unknown(fleet, item_path("backup_stores", at, "datacenter"), "datacenter",
                                     store.datacenter)
        for j, code in enumerate(store.serves):
            where = item_path("backup_stores", at, "serves", j)
            if fleet.datacenter(code) is None:
                problems += _unknown(fleet, where, "datacenter", code)
            elif code == store.datacenter:
                problems.append(
                    Problem(where, f"store {store.name} is in {code} and cannot keep the backups "
                            f"of {code}'s guests: backups must be offsite (M20)")
                )
    return problems


def _accounts(fleet: Fleet) -> list[Problem]:
    """A customer id is an account on its managed VPS (beside the operators', M13) and a read
    account on the store (beside the guests' write accounts): it may be neither."""
    problems = []
    operators = {operator.name for operator in fleet.provider.operators}
    guests = {guest.name for guest in fleet.guests}
    for i, customer in enumerate(fleet.customers):
        where = item_path("customers", fleet.where("customers", i), "id")
        if customer.id in operators:
            problems.append(
                Problem(where, f"{customer.id!r} is an operator's name: the customer would get "
                        "that operator's account, and root, on its managed VPS (M13)")
            )
        if customer.id in guests:
            problems.append(
                Problem(where, f"{customer.id!r} is also a guest's name: the store's read and "
                        "write accounts share one namespace")
            )
    return problems
