"""Ansible inventory from the fleet file: the same guests, addresses and offers Pulumi declares.

The inventory source is a small YAML file (`inventories/<env>/vpsfleet.yml`) that names this
plugin (`plugin: vpsfleet.platform.vpsfleet`, or the short `vpsfleet` of the older wiring) and
the fleet file beside it. The fleet is loaded and validated by the `vpsfleet` package; a fleet
with a problem fails the inventory with the validator's message, so that no play ever runs
against a fleet that would not be declared. The options `compose`, `groups` and `keyed_groups`
(Ansible's `constructed` features) shape variables and groups without editing this file.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from ansible.errors import AnsibleParserError
from ansible.utils.vars import combine_vars

from ansible.plugins.inventory import BaseInventoryPlugin, Constructable

DOCUMENTATION = r"""
name: vpsfleet
short_description: the vpsfleet fleet file as an inventory
version_added: 0.1.0
author:
  - vpsfleet operations team (@vpsfleet)
description:
  - Reads the fleet file (C(fleet.yml)) through the vpsfleet Python package, which validates it
    first; a fleet with any problem fails the inventory with every problem and its location, so
    that no play runs against a fleet that would not be declared.
  - The inventory source is a YAML file whose name ends in C(vpsfleet.yml) or C(vpsfleet.yaml).
  - Groups guests by datacenter (C(dc_<code>)), hypervisor host (C(hv_<name>)),
    customer (C(customer_<id>)), offer name (C(offer_<name>)), offer kind
    (C(managed), C(unmanaged)) and state (C(active), C(suspended)).
    Terminated guests are absent. Characters other than letters, digits and C(_) become C(_)
    (datacenter C(lab-a) gives C(dc_lab_a)).
  - "Dedicated servers with an address (M3, M12) are in C(dedicated), through one of its two
    children, C(dedicated_pending) (not delivered yet, C(delivered_on) unset: the provider
    installs it) or C(dedicated_delivered) (handed over: its customer is the sole administrator,
    M12, M13, and no play of the provider's targets it), and in C(dc_<code>),
    C(customer_<id>) and C(offer_<name>). They are never in C(guests), C(managed),
    C(unmanaged) nor C(backup_clients): the backup service is per guest (the night's planner,
    the store's accounts and quotas follow guests and their plans), and a dedicated offer that
    says C(backup) gets a warning. A server without an address is absent."
  - Function groups C(guests), C(hypervisors), C(backup_stores), C(monitors), C(edge_routers)
    (a datacenter's C(edge_router), with C(ansible_host) and C(vpsfleet_datacenter)); guests with
    the backup service are also in C(backup_clients). Hypervisors, stores, monitors and edge
    routers are also in their C(dc_<code>) group.
  - "Variables of group C(all): C(vpsfleet_environment) (the fleet's environment name),
    C(vpsfleet_fleet_file) (the absolute path of the fleet file the inventory read),
    C(vpsfleet_provider) (the provider section: name, e-mail addresses, SMTP relay, operators),
    C(vpsfleet_monitor_addresses) (the monitors' IPv4 addresses) and C(vpsfleet_policy_backup)
    (the fleet's backup policy: window, default paths, compression, quota multiple, dead-man check
    time, minimum count of good sets)."
  - "Variables of a hypervisor: C(ansible_host) (when the fleet gives its address),
    C(vpsfleet_datacenter), C(vpsfleet_libvirt_uri), C(vpsfleet_domain_type) (C(kvm) or
    C(qemu)), C(vpsfleet_bridge), C(vpsfleet_storage_pool), C(vpsfleet_images) (image name ->
    base volume in that pool), C(vpsfleet_time_zone) (the policy's C(sla.time_zone): the
    provider's calendar months, which are also the traffic quota's cycles, M8),
    C(vpsfleet_policy_filter) (the fleet's filter policy: what the host's firewall limits, M5) and
    C(vpsfleet_hypervisor_guests), its live guests (terminated ones are absent) sorted by name:
    C(name) (the libvirt domain), C(state), C(customer) (C(id), C(email), C(language)), C(plan)
    (the fleet's plan, whole) and C(monthly_quota_bytes) (the plan's C(monthly_quota_tb) times
    10^12, exact)."
  - "A hypervisor with an address in the fleet (C(ipv4)) is also in C(hypervisors_reachable), the
    group the site's hypervisor play targets: one without (the lab's, which is the machine the
    lab runs on) stays in C(hypervisors) only, so that no play tries to reach it by its name."
  - "Variables of a guest: C(ansible_host) and C(vpsfleet_ipv4) (when it has an address),
    C(vpsfleet_identity) (C(<name>@<created>), which derived credentials follow, never the bare
    name), C(vpsfleet_datacenter), C(vpsfleet_hypervisor), C(vpsfleet_state), C(vpsfleet_plan)
    and C(vpsfleet_offer) (the fleet's plan and offer, whole), C(vpsfleet_customer) (C(id),
    C(identity) C(<customer id>@<customer created>), C(created), C(name), C(email), C(language),
    C(ssh_keys)), C(vpsfleet_image), C(vpsfleet_services), C(vpsfleet_maintenance_window),
    C(vpsfleet_dns_resolvers) (its datacenter's) and C(vpsfleet_backup)."
  - "Variables of a dedicated server, the ones a guest has where they apply, from the same code:
    C(ansible_host) and C(vpsfleet_ipv4) (its fixed IPv4), C(vpsfleet_datacenter),
    C(vpsfleet_offer) (whole: C(root) is C(customer)), C(vpsfleet_customer) (as a guest's),
    C(vpsfleet_dns_resolvers); and its own C(vpsfleet_delivery) (M12): C(delivered) (true once
    C(delivered_on) is set), C(paid_on), C(due_on) (the fleet's C(due_on), or C(paid_on) plus
    the policy's C(dedicated_delivery_days)) and C(delivered_on) (null until delivered). The
    operators and the relay role C(guest_base) reads are in C(vpsfleet_provider), as on every host."
  - "A guest's C(vpsfleet_backup) holds C(enabled), its scope (C(paths), C(databases)), its
    C(store) (the backup store section, or null), C(compression) (the offer's
    C(backup_compression), else the policy's), C(retention_days) and
    C(retention_minimum_sets) (the minimum count of good sets a retention rule never goes below),
    C(restores_per_month) (the restore allowance), and the start time the backup planner gives
    it (C(start), C(HH:MM) inside the window, and C(fits), false when the night's plan cannot
    finish it inside the window; see C(vpsfleet backup-plan))."
  - "Variables of a backup store: C(ansible_host), C(vpsfleet_datacenter), C(vpsfleet_store)
    (its section of the fleet file), C(vpsfleet_store_guests) (the guests it keeps, terminated
    ones too with their C(terminated_on) date, for erasure: C(guest), C(identity), C(customer),
    C(state), C(terminated_on), C(retention_days), C(managed)) and C(vpsfleet_store_customers) (one read-only
    account per customer: C(id), C(identity), C(name), C(email), C(language), C(quota_bytes),
    C(guests))."
  - "Variables of a monitor: C(ansible_host), C(vpsfleet_datacenter), C(vpsfleet_support_email)
    (where alerts open tickets), C(vpsfleet_policy_audit) (the policy of the forbidden-services
    audit, M29: time, rate, ports) and C(vpsfleet_monitor_targets), what it watches (M16, M26):
    C(node), the node exporters of the active managed guests with an address (C(guest),
    C(customer), C(address)), and C(icmp), every active guest and every delivered, active dedicated
    server with an address (C(name), C(kind) guest or server, C(customer), C(address)), and
    C(hosts), every hypervisor with an address (C(host), C(datacenter), C(address)), whose node
    exporter carries the traffic quota job's figures (M8)."
  - The values come from the fleet file and are never templated (a customer's name is data).
  - After the groups and variables above, O(compose), O(groups) and O(keyed_groups) run for each
    host with the variables of group C(all) and of the host, as the C(constructed) plugin does.
requirements:
  - the vpsfleet Python package (this repository's C(pip install .)), importable by the Python
    that runs Ansible
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description:
      - The name of this plugin, so that Ansible recognises the source file as one of its own.
      - Use the fully qualified name; the short C(vpsfleet) works only where C(inventory_plugins)
        names the folder of this file (the older wiring of the repository checkout).
    required: true
    type: str
    choices: [vpsfleet.platform.vpsfleet, vpsfleet]
  fleet:
    description:
      - The fleet file, relative to the folder of the inventory source file, or absolute
        (C(~) is expanded).
    type: str
    default: fleet.yml
"""

EXAMPLES = r"""
---
# inventories/lab/vpsfleet.yml: the fleet file beside it, as the repository's environments do.
plugin: vpsfleet.platform.vpsfleet
fleet: fleet.yml

---
# A fleet file elsewhere; a group per plan, per backup store and per delivery due date of the
# dedicated servers; the address in a variable of one's own; a group of the guests whose backup
# does not fit in the night's window.
plugin: vpsfleet.platform.vpsfleet
fleet: /srv/fleet/production/fleet.yml
# Not strict: hypervisors, stores and monitors have no plan nor backup, so a key that only guests
# have is skipped for them (strict: true would stop the inventory at the first such host).
strict: false
compose:
  public_ipv4: vpsfleet_ipv4 | default(None)
keyed_groups:
  - prefix: plan
    key: vpsfleet_plan.name
  - prefix: store
    key: vpsfleet_backup.store.name
    parent_group: stores_of_guests
  - prefix: due                      # due_2026_12_08, ... (M12)
    key: vpsfleet_delivery.due_on
    parent_group: dedicated_by_due_date
groups:
  backup_late: vpsfleet_backup is defined and vpsfleet_backup.enabled and not vpsfleet_backup.fits
  french_customers: vpsfleet_customer is defined and vpsfleet_customer.language == 'fr'
"""

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")

# Offer kinds as the plays know them (M13: who is root follows from the kind).
KIND_GROUPS = {"managed_vps": "managed", "unmanaged_vps": "unmanaged", "dedicated": "dedicated"}
# A dedicated server's sub-group by delivery (M12): the provider installs a pending one; a
# delivered one is its customer's alone, and no play of the provider's targets it (M13).
DEDICATED_PENDING = "dedicated_pending"
DEDICATED_DELIVERED = "dedicated_delivered"
# The hypervisors a play can reach: those the fleet gives an address.
HYPERVISORS_REACHABLE = "hypervisors_reachable"


def group_name(prefix: str, name: str) -> str:
    """A group name Ansible accepts without warnings: `dc_lab_a` for datacenter `lab-a`."""
    return _UNSAFE.sub("_", f"{prefix}_{name}")


def _plain(model: Any) -> Any:
    """A pydantic model as plain YAML-able data (addresses and dates as strings)."""
    return model.model_dump(mode="json")


class InventoryModule(BaseInventoryPlugin, Constructable):  # type: ignore[misc]
    NAME = "vpsfleet.platform.vpsfleet"

    def verify_file(self, path: str) -> bool:
        """A source of ours, and one naming this plugin by the name it was loaded under (the
        FQCN, or the short name of the older wiring): the other one then stays silent instead of
        adding an "Incorrect plugin name" warning to a real error."""
        if not (super().verify_file(path) and path.endswith(("vpsfleet.yml", "vpsfleet.yaml"))):
            return False
        try:
            with open(path, encoding="utf-8") as source:
                declared = yaml.safe_load(source)
        except (OSError, yaml.YAMLError):
            return True  # parse() reports it
        names = getattr(self, "_redirected_names", None) or [self.NAME]
        return not isinstance(declared, dict) or declared.get("plugin") in names

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        fleet_file = Path(path).parent / Path(str(self.get_option("fleet"))).expanduser()
        try:
            # The loader module itself: correct whether the package is installed or editable.
            from vpsfleet.loader import FleetInvalid, load_fleet
        except ImportError as err:
            raise AnsibleParserError(
                f"the vpsfleet package is not importable by Ansible's Python ({err}); "
                "run Ansible from the project's virtualenv"
            ) from err
        try:
            fleet = load_fleet(fleet_file)
        except FleetInvalid as err:
            raise AnsibleParserError(f"the fleet file is invalid:\n{err.render()}") from err
        except OSError as err:
            raise AnsibleParserError(f"cannot read the fleet file {fleet_file}: {err}") from err
        self._populate(fleet)
        # The file itself: what runs on the controller from the inventory (role edge_router's
        # render) reads the same fleet, also a throwaway clone's (deploy apply).
        self.inventory.set_variable("all", "vpsfleet_fleet_file", str(fleet_file.resolve()))

    # --- building the inventory --------------------------------------------------------------

    def _group(self, name: str, parent: str | None = None) -> str:
        self.inventory.add_group(name)
        if parent:
            self.inventory.add_group(parent)
            self.inventory.add_child(parent, name)
        return name

    def _host(self, name: str, groups: list[str], variables: dict[str, Any]) -> None:
        self.inventory.add_host(name)
        for group in groups:
            self._group(group)
            self.inventory.add_child(group, name)
        for key, value in variables.items():
            self.inventory.set_variable(name, key, value)
        self._construct(name)

    def _construct(self, name: str) -> None:
        """The user's `compose`, `groups` and `keyed_groups`, over the variables of group `all`
        and of the host (what `constructed` would see)."""
        strict = self.get_option("strict")
        variables = combine_vars(
            self.inventory.groups["all"].get_vars(), self.inventory.get_host(name).get_vars()
        )
        self._set_composite_vars(self.get_option("compose"), variables, name, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), variables, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, name, strict=strict)

    def _populate(self, fleet: Any) -> None:
        for function in ("guests", "hypervisors", "backup_stores", "monitors", "edge_routers"):
            self._group(function)
        provider = _plain(fleet.provider)
        self.inventory.set_variable("all", "vpsfleet_environment", fleet.environment)
        self.inventory.set_variable("all", "vpsfleet_provider", provider)
        self.inventory.set_variable(
            "all", "vpsfleet_monitor_addresses", [str(m.address) for m in fleet.monitors]
        )
        self.inventory.set_variable("all", "vpsfleet_policy_backup", _plain(fleet.policy.backup))

        datacenters = {dc.code: dc for dc in fleet.datacenters}
        # Always there, so that a play naming it never meets an unknown group.
        self._group(HYPERVISORS_REACHABLE, parent="hypervisors")
        for host in fleet.hosts:
            variables: dict[str, Any] = {
                "vpsfleet_datacenter": host.datacenter,
                "vpsfleet_libvirt_uri": host.uri,
                "vpsfleet_domain_type": host.domain_type,
                "vpsfleet_bridge": host.bridge,
                "vpsfleet_storage_pool": host.storage_pool,
                "vpsfleet_images": dict(host.images),
                "vpsfleet_time_zone": str(fleet.policy.sla.time_zone),
                "vpsfleet_policy_filter": _plain(fleet.policy.filter),
                "vpsfleet_hypervisor_guests": self._hypervisor_guests(fleet, host.name),
            }
            groups = ["hypervisors", group_name("dc", host.datacenter)]
            if host.ipv4 is not None:
                variables["ansible_host"] = str(host.ipv4)
                groups.append(HYPERVISORS_REACHABLE)
            self._host(host.name, groups, variables)

        # The datacenters' edge routers keep the dedicated servers' network promises (004: M5,
        # M6, M7, M28): role edge_router renders their ruleset from this fleet.
        for dc in fleet.datacenters:
            if dc.edge_router is not None:
                self._host(
                    dc.edge_router.name,
                    ["edge_routers", group_name("dc", dc.code)],
                    {"ansible_host": str(dc.edge_router.address), "vpsfleet_datacenter": dc.code},
                )

        # The night's start times (M18): the planner's, so that nothing is random.
        from vpsfleet.backup_plan import plan_night

        night = plan_night(fleet)
        starts = {
            slot.job.guest: {"start": night.start_time(slot), "fits": slot not in plan.late}
            for plan in night.stores
            for slot in plan.slots + plan.late
        }
        for guest in fleet.guests:
            if guest.state.value == "terminated":
                continue  # M11: deleted with its data; nothing left to configure
            self._add_guest(fleet, guest, datacenters, starts.get(guest.name))

        # Both sub-groups always exist, so that a play naming one never meets an unknown group.
        self._group(DEDICATED_PENDING, parent="dedicated")
        self._group(DEDICATED_DELIVERED, parent="dedicated")
        for server in fleet.dedicated_servers:
            if server.ipv4 is None:
                continue  # nothing can reach it before `vpsfleet ipam allocate` (M3)
            self._add_dedicated(fleet, server, datacenters)

        for store in fleet.backup_stores:
            self._host(
                store.name,
                ["backup_stores", group_name("dc", store.datacenter)],
                {
                    "ansible_host": str(store.address),
                    "vpsfleet_datacenter": store.datacenter,
                    "vpsfleet_store": _plain(store),
                    **self._store_accounts(fleet, store),
                },
            )
        targets = self._monitor_targets(fleet) if fleet.monitors else {}
        for monitor in fleet.monitors:
            self._host(
                monitor.name,
                ["monitors", group_name("dc", monitor.datacenter)],
                {
                    "ansible_host": str(monitor.address),
                    "vpsfleet_datacenter": monitor.datacenter,
                    "vpsfleet_monitor_targets": targets,
                    "vpsfleet_support_email": fleet.provider.support_email,
                    "vpsfleet_policy_audit": _plain(fleet.policy.audit),
                },
            )

    def _hypervisor_guests(self, fleet: Any, host: str) -> list[dict[str, Any]]:
        """The live guests of a host, with what its traffic job needs (M8): the plan's rates and
        quota, and whom to tell when the throttle starts."""
        guests: list[dict[str, Any]] = []
        for guest in fleet.guests:
            if guest.host != host or guest.state.value == "terminated":
                continue
            plan = fleet.plan(guest.plan)
            customer = fleet.customer(guest.customer)
            guests.append(
                {
                    "name": guest.name,
                    "state": guest.state.value,
                    "customer": {"id": customer.id, "name": customer.name, "email": customer.email,
                                 "language": customer.language},
                    "plan": _plain(plan),
                    # Exact: 0.3 TB is 300000000000 bytes, never a float's neighbour.
                    "monthly_quota_bytes": int(Decimal(str(plan.monthly_quota_tb)) * 10**12),
                }
            )
        return sorted(guests, key=lambda g: g["name"])

    def _monitor_targets(self, fleet: Any) -> dict[str, list[dict[str, Any]]]:
        """What every monitor watches: the node exporters of the managed guests (M16), a PING
        of every machine a customer is promised availability on (M26), and the hypervisors'
        node exporters, where the traffic quota job publishes (M8). Suspended guests are cut
        off (M7) and undelivered servers are still being installed: neither is probed."""
        node: list[dict[str, Any]] = []
        icmp: list[dict[str, Any]] = []
        for guest in fleet.guests:
            if guest.state.value != "active" or guest.ipv4 is None:
                continue
            entry = {"customer": guest.customer, "address": str(guest.ipv4)}
            icmp.append({"name": guest.name, "kind": "guest", **entry})
            offer = fleet.offer(guest.offer)
            if offer is not None and KIND_GROUPS[offer.kind.value] == "managed":
                node.append({"guest": guest.name, **entry})
        for server in fleet.dedicated_servers:
            if server.ipv4 is None or server.delivered_on is None or server.state.value != "active":
                continue  # a suspended server is cut off at the edge (M7), as a suspended guest
            icmp.append(
                {"name": server.name, "kind": "server", "customer": server.customer,
                 "address": str(server.ipv4)}
            )
        hosts = [
            {"host": host.name, "datacenter": host.datacenter, "address": str(host.ipv4)}
            for host in fleet.hosts
            if host.ipv4 is not None  # the lab's hypervisor is the machine itself: not reachable
        ]
        return {
            "node": sorted(node, key=lambda t: t["guest"]),
            "icmp": sorted(icmp, key=lambda t: (t["kind"], t["name"])),
            "hosts": sorted(hosts, key=lambda t: t["host"]),
        }

    def _store_accounts(self, fleet: Any, store: Any) -> dict[str, Any]:
        """What a store keeps: one folder and write account per backed-up guest, one read-only
        account per customer with its quota, and the terminated guests whose sets it erases on
        their termination date (M11)."""
        guests: list[dict[str, Any]] = []
        customers: dict[str, dict[str, Any]] = {}
        multiple = fleet.policy.backup.quota_disk_multiple
        for guest in fleet.guests:
            if not fleet.backup_enabled(guest):
                continue
            chosen = fleet.store_for(guest)
            if chosen is None or chosen.name != store.name:
                continue
            offer = fleet.offer(guest.offer)
            guests.append(
                {
                    "guest": guest.name,
                    "identity": guest.identity,
                    "customer": guest.customer,
                    "state": guest.state.value,
                    "terminated_on": guest.terminated_on.isoformat() if guest.terminated_on else None,
                    "retention_days": offer.backup_retention_days if offer else None,
                    # the store's morning check mails the customer of an unmanaged guest (M24)
                    "managed": offer is not None and KIND_GROUPS[offer.kind.value] == "managed",
                }
            )
            if guest.state.value == "terminated":
                continue
            customer = fleet.customer(guest.customer)
            entry = customers.setdefault(
                guest.customer,
                {
                    "id": guest.customer,
                    "identity": customer.identity,
                    "name": customer.name,
                    "email": customer.email,
                    "language": customer.language,
                    "quota_bytes": 0,
                    "guests": [],
                },
            )
            plan = fleet.plan(guest.plan)
            entry["quota_bytes"] += (plan.disk_gb if plan else 0) * multiple * 1_000_000_000
            entry["guests"].append(guest.name)
        return {
            "vpsfleet_store_guests": sorted(guests, key=lambda g: (g["customer"], g["guest"])),
            "vpsfleet_store_customers": [customers[c] for c in sorted(customers)],
        }

    def _customer_machine(
        self, fleet: Any, customer_id: str, offer: Any, dc_code: str, ipv4: Any,
        datacenters: dict[str, Any],
    ) -> tuple[list[str], dict[str, Any]]:
        """The groups and variables every customer's machine gets, guest or dedicated server, in
        one place: what role `guest_base` reads (the customer's account and keys, who is root from
        the offer; the operators and the relay come from group `all`), the address, the
        datacenter and its resolvers."""
        customer = fleet.customer(customer_id)
        groups = [
            group_name("dc", dc_code),
            group_name("customer", customer_id),
            group_name("offer", offer.name),
        ]
        variables: dict[str, Any] = {
            "vpsfleet_datacenter": dc_code,
            "vpsfleet_offer": _plain(offer),
            "vpsfleet_customer": {
                "id": customer.id,
                "identity": customer.identity,
                "created": customer.created.isoformat(),
                "name": customer.name,
                "email": customer.email,
                "language": customer.language,
                "ssh_keys": list(customer.ssh_keys),
            },
            "vpsfleet_dns_resolvers": [str(r) for r in datacenters[dc_code].dns_resolvers],
        }
        if ipv4 is not None:
            variables["ansible_host"] = str(ipv4)
            variables["vpsfleet_ipv4"] = str(ipv4)
        return groups, variables

    def _add_dedicated(self, fleet: Any, server: Any, datacenters: dict[str, Any]) -> None:
        """A dedicated server with its address (M3, M12). Not in `guests`, `managed`,
        `unmanaged` nor `backup_clients`: the backup service is per guest (the night's planner,
        the store's accounts and quotas follow guests' plans), and no dedicated offer of the
        fleets has it."""
        offer = fleet.offer(server.offer)
        if offer.backup:
            self.display.warning(
                f"dedicated server {server.name}: offer {offer.name} says backup, but the backup "
                "service covers guests only; the server is not in backup_clients"
            )
        delivered = server.delivered_on is not None
        groups, variables = self._customer_machine(
            fleet, server.customer, offer, server.datacenter, server.ipv4, datacenters
        )
        groups.append(DEDICATED_DELIVERED if delivered else DEDICATED_PENDING)
        variables["vpsfleet_delivery"] = {
            "delivered": delivered,
            "paid_on": server.paid_on.isoformat(),
            "due_on": fleet.dedicated_due_on(server).isoformat(),
            "delivered_on": server.delivered_on.isoformat() if delivered else None,
        }
        self._host(server.name, groups, variables)

    def _add_guest(
        self, fleet: Any, guest: Any, datacenters: dict[str, Any], start: dict[str, Any] | None
    ) -> None:
        offer = fleet.offer(guest.offer)
        dc_code = fleet.guest_datacenter(guest)
        store = fleet.store_for(guest)
        backup_enabled = fleet.backup_enabled(guest)
        guest_base_groups, guest_base_variables = self._customer_machine(
            fleet, guest.customer, offer, dc_code, guest.ipv4, datacenters
        )
        groups = [
            "guests",
            group_name("hv", guest.host),
            *guest_base_groups,
            KIND_GROUPS[offer.kind.value],
            guest.state.value,
        ]
        if backup_enabled:
            groups.append("backup_clients")
        variables: dict[str, Any] = {
            **guest_base_variables,
            "vpsfleet_identity": guest.identity,
            "vpsfleet_hypervisor": guest.host,
            "vpsfleet_state": guest.state.value,
            "vpsfleet_plan": _plain(fleet.plan(guest.plan)),
            "vpsfleet_image": guest.image,
            "vpsfleet_services": list(guest.services),
            "vpsfleet_maintenance_window": guest.maintenance_window,
            "vpsfleet_backup": {
                "enabled": backup_enabled,
                "paths": fleet.backup_paths(guest),
                "databases": guest.backup.databases,
                "store": _plain(store) if store is not None else None,
                # The offer's own choice (an offer may keep gzip), else the policy's.
                "compression": offer.backup_compression or fleet.policy.backup.compression,
                "retention_days": offer.backup_retention_days,
                "retention_minimum_sets": fleet.policy.backup.retention_minimum_sets,
                "restores_per_month": offer.restores_per_month,
                # The planner's start time inside the window, and whether the run fits in it.
                "start": start["start"] if start else None,
                "fits": start["fits"] if start else None,
            },
        }
        self._host(guest.name, groups, variables)
