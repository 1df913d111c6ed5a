"""The parsed fleet: its sections, and the lookups every consumer needs."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from vpsfleet.schema import (
    BackupStore,
    Customer,
    Datacenter,
    DedicatedServer,
    Guest,
    GuestState,
    HypervisorHost,
    MaintenanceWindow,
    Monitor,
    Offer,
    Plan,
    Policy,
    Pool,
    Provider,
    QuarantinedAddress,
)


@dataclass
class Fleet:
    source: Path
    environment: str
    policy: Policy
    provider: Provider
    datacenters: list[Datacenter] = field(default_factory=list)
    hosts: list[HypervisorHost] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    customers: list[Customer] = field(default_factory=list)
    guests: list[Guest] = field(default_factory=list)
    dedicated_servers: list[DedicatedServer] = field(default_factory=list)
    backup_stores: list[BackupStore] = field(default_factory=list)
    monitors: list[Monitor] = field(default_factory=list)
    quarantine: list[QuarantinedAddress] = field(default_factory=list)
    maintenance: list[MaintenanceWindow] = field(default_factory=list)
    # For each section, the index in the file of each parsed item (items that failed to parse
    # are absent from the lists above, so positions are kept to report problems where they are).
    positions: dict[str, list[int]] = field(default_factory=dict)
    # Names of items that are declared but failed the schema: references to them are not
    # reported a second time as unknown.
    declared_invalid: dict[str, set[str]] = field(default_factory=dict)

    def where(self, section: str, parsed_index: int) -> int:
        return self.positions[section][parsed_index]

    # --- lookups by name (the first item of a name wins; duplicates are a validation error) ---

    @cached_property
    def _by_name(self) -> dict[str, dict[str, Any]]:
        index: dict[str, dict[str, Any]] = {}
        for section, key in (
            ("datacenters", "code"),
            ("hosts", "name"),
            ("plans", "name"),
            ("offers", "name"),
            ("customers", "id"),
            ("guests", "name"),
            ("dedicated_servers", "name"),
            ("backup_stores", "name"),
        ):
            names: dict[str, Any] = {}
            for item in getattr(self, section):
                names.setdefault(getattr(item, key), item)
            index[section] = names
        return index

    def datacenter(self, code: str) -> Datacenter | None:
        return cast(Datacenter | None, self._by_name["datacenters"].get(code))

    def host(self, name: str) -> HypervisorHost | None:
        return cast(HypervisorHost | None, self._by_name["hosts"].get(name))

    def plan(self, name: str) -> Plan | None:
        return cast(Plan | None, self._by_name["plans"].get(name))

    def offer(self, name: str) -> Offer | None:
        return cast(Offer | None, self._by_name["offers"].get(name))

    def customer(self, ident: str) -> Customer | None:
        return cast(Customer | None, self._by_name["customers"].get(ident))

    def guest(self, name: str) -> Guest | None:
        return cast(Guest | None, self._by_name["guests"].get(name))

    def backup_store(self, name: str) -> BackupStore | None:
        return cast(BackupStore | None, self._by_name["backup_stores"].get(name))

    # --- derived facts ---

    def live_guests(self) -> list[Guest]:
        """Guests whose contract runs (active or suspended): they hold resources."""
        return [g for g in self.guests if g.state is not GuestState.TERMINATED]

    def guest_datacenter(self, guest: Guest) -> str | None:
        host = self.host(guest.host)
        return host.datacenter if host else None

    def pool_of(self, address: ipaddress.IPv4Address) -> tuple[Datacenter, Pool] | None:
        for dc in self.datacenters:
            for pool in dc.pools:
                if address in pool.network:
                    return dc, pool
        return None

    def backup_enabled(self, guest: Guest) -> bool:
        if guest.backup.enabled is not None:
            return guest.backup.enabled
        offer = self.offer(guest.offer)
        return bool(offer and offer.backup)

    def backup_paths(self, guest: Guest) -> list[str]:
        if guest.backup.paths is not None:
            return guest.backup.paths
        return self.policy.backup.default_paths

    def store_for(self, guest: Guest) -> BackupStore | None:
        """The store that keeps this guest's backups: its own choice, or the first that serves
        its datacenter (M20: never one in the guest's own datacenter, see validate.py)."""
        if guest.backup.store is not None:
            return self.backup_store(guest.backup.store)
        dc = self.guest_datacenter(guest)
        for store in self.backup_stores:
            if dc in store.serves and store.datacenter != dc:
                return store
        return None

    @cached_property
    def latest_releases(self) -> dict[ipaddress.IPv4Address, QuarantinedAddress]:
        """Each quarantined address's latest release, whatever the order of the entries."""
        latest: dict[ipaddress.IPv4Address, QuarantinedAddress] = {}
        for entry in self.quarantine:
            known = latest.get(entry.ipv4)
            if known is None or entry.released_on > known.released_on:
                latest[entry.ipv4] = entry
        return latest

    def quarantined(self, today: dt.date) -> set[ipaddress.IPv4Address]:
        """Addresses still in quarantine on `today` (M3)."""
        days = dt.timedelta(days=self.policy.ipv4_quarantine_days)
        return {a for a, q in self.latest_releases.items() if q.released_on + days > today}

    def dedicated_due_on(self, server: DedicatedServer) -> dt.date:
        if server.due_on is not None:
            return server.due_on
        return server.paid_on + dt.timedelta(days=self.policy.dedicated_delivery_days)

