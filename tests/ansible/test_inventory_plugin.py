"""The inventory plugin: the fleet file as Ansible groups and host variables."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.ansible.conftest import BIN, REPO, ansible_env, inventory_json, run_inventory
from vpsfleet.loader import FleetInvalid, load_fleet

Inventory = Callable[[str], dict[str, Any]]


def members(inv: dict[str, Any], group: str) -> set[str]:
    """Hosts of a group, its child groups included (as `ansible-inventory --list` nests them)."""
    node = inv.get(group, {})
    hosts = set(node.get("hosts", []))
    for child in node.get("children", []):
        hosts |= members(inv, child)
    return hosts


def plugin_constant(name: str) -> str:
    """DOCUMENTATION or EXAMPLES of the plugin, read without importing it."""
    tree = ast.parse((REPO / "ansible" / "plugins" / "inventory" / "vpsfleet.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
            return str(ast.literal_eval(node.value))
    raise AssertionError(f"no {name} in the plugin")


def hostvars(inv: dict[str, Any], host: str) -> dict[str, Any]:
    variables: dict[str, Any] = inv["_meta"]["hostvars"][host]
    return variables


def test_lab_graph_shows_function_offer_and_customer_groups() -> None:
    result = run_inventory("--graph")  # the default inventory of ansible.cfg: the lab
    assert result.returncode == 0, result.stderr
    for group in (
        "@guests:",
        "@hypervisors:",
        "@backup_stores:",
        "@monitors:",
        "@managed:",
        "@unmanaged:",
        "@dc_lab_a:",
        "@hv_labhv1:",
        "@customer_c_alpha:",
    ):
        assert group in result.stdout


def test_lab_guests_are_grouped_by_offer_kind(inventory_of: Inventory) -> None:
    inv = inventory_of("lab")
    assert members(inv, "managed") == {"alpha-web", "alpha-app"}
    assert members(inv, "unmanaged") == {"bravo-vps", "bravo-dev"}
    assert members(inv, "guests") == {"alpha-web", "alpha-app", "bravo-vps", "bravo-dev"}
    assert members(inv, "hypervisors") == {"labhv1", "labhv2"}
    assert members(inv, "edge_routers") == {"labedge1"}
    assert members(inv, "backup_stores") == {"labstore1"}
    assert members(inv, "monitors") == {"labmon1"}
    assert members(inv, "dc_lab_b") == {"labstore1", "labmon1"}
    # The customer's group holds its dedicated server too.
    assert members(inv, "customer_c_bravo") == {"bravo-vps", "bravo-dev", "bravo-dedi"}


def test_lab_guest_variables_come_from_the_fleet(inventory_of: Inventory) -> None:
    web = hostvars(inventory_of("lab"), "alpha-web")
    assert web["ansible_host"] == "198.51.100.10"
    assert web["vpsfleet_plan"]["name"] == "vps-m"
    assert web["vpsfleet_offer"]["kind"] == "managed_vps"
    assert web["vpsfleet_offer"]["root"] == "provider"
    assert web["vpsfleet_customer"]["email"] == "admin@alpha.example.com"
    assert web["vpsfleet_customer"]["language"] == "fr"
    assert web["vpsfleet_backup"]["enabled"] is True
    assert web["vpsfleet_backup"]["paths"] == ["/data/www"]
    assert web["vpsfleet_backup"]["store"]["name"] == "labstore1"
    assert web["vpsfleet_dns_resolvers"] == ["198.51.100.2"]
    # The provider (operators, relay) is known to every host.
    assert web["vpsfleet_provider"]["relay"] == {"host": "relay.lab.example.net", "port": 587}
    assert web["vpsfleet_monitor_addresses"] == ["203.0.113.20"]


def test_lab_guest_without_backup_has_no_store(inventory_of: Inventory) -> None:
    dev = hostvars(inventory_of("lab"), "bravo-dev")
    assert dev["vpsfleet_backup"]["enabled"] is False
    assert "bravo-dev" not in members(inventory_of("lab"), "backup_clients")
    assert hostvars(inventory_of("lab"), "labstore1")["ansible_host"] == "203.0.113.10"


def test_production_has_every_live_guest_and_no_terminated_one(inventory_of: Inventory) -> None:
    fleet = load_fleet(REPO / "inventories" / "example-production" / "fleet.yml")
    inv = inventory_of("example-production")
    live = {g.name for g in fleet.guests if g.state.value != "terminated"}
    terminated = {g.name for g in fleet.guests if g.state.value == "terminated"}
    suspended = {g.name for g in fleet.guests if g.state.value == "suspended"}
    assert terminated, "the example fleet should show a terminated guest"
    assert suspended, "the example fleet should show a suspended guest"
    assert members(inv, "guests") == live
    assert not terminated & set(inv["_meta"]["hostvars"])
    assert members(inv, "suspended") == suspended
    for guest in fleet.live_guests():
        dc = fleet.guest_datacenter(guest)
        assert dc is not None
        assert guest.name in members(inv, "dc_" + dc.replace("-", "_"))
        assert hostvars(inv, guest.name).get("ansible_host") == (
            str(guest.ipv4) if guest.ipv4 else None
        )


def test_production_offer_groups_follow_who_is_root(inventory_of: Inventory) -> None:
    fleet = load_fleet(REPO / "inventories" / "example-production" / "fleet.yml")
    inv = inventory_of("example-production")
    for guest in fleet.live_guests():
        offer = fleet.offer(guest.offer)
        assert offer is not None
        group = "managed" if offer.root == "provider" else "unmanaged"
        assert guest.name in members(inv, group), (guest.name, offer.name)
        assert hostvars(inv, guest.name)["vpsfleet_offer"]["root"] == offer.root


def test_production_graph_lists_every_datacenter() -> None:
    fleet = load_fleet(REPO / "inventories" / "example-production" / "fleet.yml")
    source = REPO / "inventories" / "example-production" / "vpsfleet.yml"
    result = run_inventory("-i", str(source), "--graph")
    assert result.returncode == 0, result.stderr
    for dc in fleet.datacenters:
        assert "@dc_" + dc.code.replace("-", "_") + ":" in result.stdout


@pytest.fixture
def broken_fleet(tmp_path: Path) -> Path:
    """The lab fleet with two guests on one address: a copy, the original is never touched."""
    yaml = YAML()
    data = yaml.load((REPO / "inventories" / "lab" / "fleet.yml").read_text())
    data["guests"][1]["ipv4"] = data["guests"][0]["ipv4"]
    with (tmp_path / "fleet.yml").open("w") as out:
        yaml.dump(data, out)
    shutil.copy(REPO / "inventories" / "lab" / "vpsfleet.yml", tmp_path / "vpsfleet.yml")
    return tmp_path


def test_invalid_fleet_fails_the_inventory_with_the_validators_message(broken_fleet: Path) -> None:
    with pytest.raises(FleetInvalid) as caught:
        load_fleet(broken_fleet / "fleet.yml")
    expected = caught.value.render()
    assert "guests[1].ipv4" in expected

    result = run_inventory("-i", str(broken_fleet / "vpsfleet.yml"), "--list")
    assert result.returncode != 0
    for line in expected.splitlines():
        assert line in result.stderr


def test_guest_backup_start_is_the_planners(inventory_of: Inventory) -> None:
    from vpsfleet.backup_plan import plan_night

    fleet = load_fleet(REPO / "inventories" / "example-production" / "fleet.yml")
    night = plan_night(fleet)
    inv = inventory_of("example-production")
    planned = {s.job.guest: night.start_time(s) for p in night.stores for s in p.slots + p.late}
    assert planned, "the example fleet has guests with backups"
    for guest, start in planned.items():
        backup = hostvars(inv, guest)["vpsfleet_backup"]
        assert backup["start"] == start
        offer = fleet.offer(fleet.guest(guest).offer)  # type: ignore[union-attr]
        assert offer is not None
        assert backup["retention_days"] == offer.backup_retention_days
    # Starts spread over the window, not all at midnight, when a store has more guests than
    # connections.
    assert len(set(planned.values())) > 1


def test_store_lists_its_accounts_quota_and_terminated_guests(inventory_of: Inventory) -> None:
    fleet = load_fleet(REPO / "inventories" / "example-production" / "fleet.yml")
    inv = inventory_of("example-production")
    for store in fleet.backup_stores:
        variables = hostvars(inv, store.name)
        kept = [
            g for g in fleet.guests
            if fleet.backup_enabled(g) and (s := fleet.store_for(g)) is not None and s.name == store.name
        ]  # fmt: skip
        listed = {g["guest"]: g for g in variables["vpsfleet_store_guests"]}
        assert set(listed) == {g.name for g in kept}
        for guest in kept:
            assert listed[guest.name]["customer"] == guest.customer
            assert listed[guest.name]["terminated_on"] == (
                guest.terminated_on.isoformat() if guest.terminated_on else None
            )
            offer = fleet.offer(guest.offer)
            assert offer is not None
            # the dead-man check mails the customer of an unmanaged guest itself (M24)
            assert listed[guest.name]["managed"] is (offer.kind.value == "managed_vps")
        assert {g["managed"] for g in variables["vpsfleet_store_guests"]} == {True, False}
        for customer in variables["vpsfleet_store_customers"]:
            live = [g for g in kept if g.customer == customer["id"] and g.state.value != "terminated"]
            assert sorted(customer["guests"]) == sorted(g.name for g in live)
            disks = sum(plan.disk_gb for g in live if (plan := fleet.plan(g.plan)) is not None)
            assert customer["quota_bytes"] == disks * fleet.policy.backup.quota_disk_multiple * 10**9


def test_identities_follow_name_and_creation_date(inventory_of: Inventory) -> None:
    """#5: derived credentials follow an identity that a reused name does not bring back."""
    fleet = load_fleet(REPO / "inventories" / "example-production" / "fleet.yml")
    inv = inventory_of("example-production")
    for guest in fleet.live_guests():
        variables = hostvars(inv, guest.name)
        customer = fleet.customer(guest.customer)
        assert customer is not None
        assert variables["vpsfleet_identity"] == f"{guest.name}@{guest.created.isoformat()}"
        assert variables["vpsfleet_customer"]["identity"] == (
            f"{customer.id}@{customer.created.isoformat()}")
    for store in fleet.backup_stores:
        variables = hostvars(inv, store.name)
        for item in variables["vpsfleet_store_guests"]:
            kept = fleet.guest(item["guest"])
            assert kept is not None and item["identity"] == kept.identity
        for item in variables["vpsfleet_store_customers"]:
            customer = fleet.customer(item["id"])
            assert customer is not None and item["identity"] == customer.identity
    alpha = hostvars(inventory_of("lab"), "alpha-web")
    assert alpha["vpsfleet_identity"] == "alpha-web@2026-01-10"
    assert alpha["vpsfleet_customer"]["identity"] == "c-alpha@2026-01-05"


def test_retention_never_goes_below_the_policys_minimum_count(inventory_of: Inventory) -> None:
    web = hostvars(inventory_of("lab"), "alpha-web")
    assert web["vpsfleet_backup"]["retention_minimum_sets"] == 3
    assert web["vpsfleet_policy_backup"]["retention_minimum_sets"] == 3


def test_lab_monitor_watches_managed_exporters_and_pings_every_active_guest(
    inventory_of: Inventory,
) -> None:
    """M16: the managed guests' node exporters; M26: a PING of every active guest."""
    monitor = hostvars(inventory_of("lab"), "labmon1")
    assert monitor["vpsfleet_support_email"] == "support@lab.example.net"
    targets = monitor["vpsfleet_monitor_targets"]
    assert targets["node"] == [
        {"guest": "alpha-app", "customer": "c-alpha", "address": "198.51.100.11"},
        {"guest": "alpha-web", "customer": "c-alpha", "address": "198.51.100.10"},
    ]
    assert {(t["name"], t["kind"], t["customer"], t["address"]) for t in targets["icmp"]} == {
        ("alpha-app", "guest", "c-alpha", "198.51.100.11"),
        ("alpha-web", "guest", "c-alpha", "198.51.100.10"),
        ("bravo-dev", "guest", "c-bravo", "198.51.100.13"),
        ("bravo-vps", "guest", "c-bravo", "198.51.100.12"),
        # the delivered dedicated server (M26); the pending one is not the customer's yet
        ("alpha-dedi", "server", "c-alpha", "198.51.100.20"),
    }
    # Only monitors carry them.
    assert "vpsfleet_monitor_targets" not in hostvars(inventory_of("lab"), "alpha-web")
    # labhv1 is the machine the lab runs on (no address): nothing to scrape; labhv2 is a container.
    assert targets["hosts"] == [{"host": "labhv2", "datacenter": "lab-a", "address": "198.51.100.250"}]


def test_monitors_scrape_every_hypervisor_with_an_address_for_the_traffic_job(
    inventory_of: Inventory,
) -> None:
    """M8: the traffic quota job publishes on the hypervisors' node exporters, which the
    monitors scrape (job hypervisor_node)."""
    fleet = load_fleet(REPO / "inventories" / "example-production" / "fleet.yml")
    inv = inventory_of("example-production")
    expected = sorted(
        ({"host": h.name, "datacenter": h.datacenter, "address": str(h.ipv4)} for h in fleet.hosts
         if h.ipv4 is not None),
        key=lambda t: t["host"],
    )
    assert len(expected) >= 3
    for monitor in fleet.monitors:
        assert hostvars(inv, monitor.name)["vpsfleet_monitor_targets"]["hosts"] == expected


def test_production_monitor_pings_active_guests_and_delivered_servers_only(
    inventory_of: Inventory,
) -> None:
    fleet = load_fleet(REPO / "inventories" / "example-production" / "fleet.yml")
    inv = inventory_of("example-production")
    active = {g.name: g for g in fleet.guests if g.state.value == "active" and g.ipv4}
    delivered = {s.name: s for s in fleet.dedicated_servers if s.ipv4 and s.delivered_on}
    assert len(delivered) < len(fleet.dedicated_servers), "the example has an undelivered server"
    assert fleet.monitors
    for monitor in fleet.monitors:
        variables = hostvars(inv, monitor.name)
        assert variables["vpsfleet_support_email"] == fleet.provider.support_email
        targets = variables["vpsfleet_monitor_targets"]
        icmp = {(t["kind"], t["name"]): t for t in targets["icmp"]}
        assert set(icmp) == {("guest", n) for n in active} | {("server", n) for n in delivered}
        for name, guest in active.items():
            assert icmp["guest", name]["address"] == str(guest.ipv4)
            assert icmp["guest", name]["customer"] == guest.customer
        for name, server in delivered.items():
            assert icmp["server", name]["address"] == str(server.ipv4)
        managed = {
            n for n, g in active.items()
            if (o := fleet.offer(g.offer)) is not None and o.kind.value == "managed_vps"
        }  # fmt: skip
        assert managed and {t["guest"] for t in targets["node"]} == managed


# --- dedicated servers (M3, M12, M13) ------------------------------------------------------------

GUEST_GROUPS = ("guests", "managed", "unmanaged", "backup_clients", "active", "suspended")


def lab_variant(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    """An inventory source over a copy of the lab fleet changed by `edit` (text to text)."""
    text = (REPO / "inventories" / "lab" / "fleet.yml").read_text()
    changed = edit(text)
    assert changed != text, "the edit changed nothing"
    (tmp_path / "fleet.yml").write_text(changed)
    source = tmp_path / "vpsfleet.yml"
    source.write_text("plugin: vpsfleet.platform.vpsfleet\nfleet: fleet.yml\n")
    return source


def test_lab_dedicated_servers_are_pending_or_delivered_and_in_no_guest_group(
    inventory_of: Inventory,
) -> None:
    inv = inventory_of("lab")
    assert members(inv, "dedicated") == {"bravo-dedi", "alpha-dedi"}
    assert members(inv, "dedicated_pending") == {"bravo-dedi"}
    assert members(inv, "dedicated_delivered") == {"alpha-dedi"}
    assert set(inv["dedicated"]["children"]) == {"dedicated_pending", "dedicated_delivered"}
    for group in ("dc_lab_a", "customer_c_bravo", "offer_dedicated"):
        assert "bravo-dedi" in members(inv, group), group
    for group in GUEST_GROUPS:
        assert "bravo-dedi" not in members(inv, group), group
    assert not any("bravo-dedi" in members(inv, g) for g in inv if g.startswith("hv_"))
    # Not delivered: the monitor does not PING it yet (M26 counts from delivery).
    icmp = hostvars(inv, "labmon1")["vpsfleet_monitor_targets"]["icmp"]
    assert "bravo-dedi" not in {t["name"] for t in icmp}


def test_lab_dedicated_server_variables_come_from_the_fleet(inventory_of: Inventory) -> None:
    inv = inventory_of("lab")
    server = hostvars(inv, "bravo-dedi")
    assert server["ansible_host"] == server["vpsfleet_ipv4"] == "198.51.100.4"
    assert server["vpsfleet_datacenter"] == "lab-a"
    assert server["vpsfleet_dns_resolvers"] == ["198.51.100.2"]
    assert server["vpsfleet_offer"]["kind"] == "dedicated"
    assert server["vpsfleet_offer"]["root"] == "customer"  # M12, M13
    assert server["vpsfleet_delivery"] == {
        "delivered": False, "paid_on": "2026-12-01", "due_on": "2026-12-08", "delivered_on": None,
    }  # fmt: skip
    # What role guest_base reads, as a guest of the same customer has it: the customer's account,
    # language and keys; the operators and the relay from group all.
    guest = hostvars(inv, "bravo-vps")
    assert server["vpsfleet_customer"] == guest["vpsfleet_customer"]
    assert server["vpsfleet_customer"]["id"] == "c-bravo"
    assert server["vpsfleet_customer"]["language"] == "en"
    assert server["vpsfleet_customer"]["ssh_keys"]
    assert server["vpsfleet_provider"] == guest["vpsfleet_provider"]
    assert server["vpsfleet_provider"]["relay"] == {"host": "relay.lab.example.net", "port": 587}
    # Nothing that only a guest has: no plan, hypervisor, state, backup.
    for name in ("vpsfleet_plan", "vpsfleet_hypervisor", "vpsfleet_state", "vpsfleet_backup",
                 "vpsfleet_image", "vpsfleet_identity"):  # fmt: skip
        assert name not in server, name


def test_production_dedicated_servers_are_grouped_by_delivery(inventory_of: Inventory) -> None:
    fleet = load_fleet(REPO / "inventories" / "example-production" / "fleet.yml")
    inv = inventory_of("example-production")
    reachable = [s for s in fleet.dedicated_servers if s.ipv4 is not None]
    delivered = {s.name for s in reachable if s.delivered_on is not None}
    pending = {s.name for s in reachable if s.delivered_on is None}
    assert delivered and pending, "the example fleet has a delivered and a pending server"
    assert members(inv, "dedicated_delivered") == delivered
    assert members(inv, "dedicated_pending") == pending
    assert members(inv, "dedicated") == delivered | pending
    assert not (delivered | pending) & members(inv, "guests")
    for server in reachable:
        variables = hostvars(inv, server.name)
        assert variables["ansible_host"] == str(server.ipv4)
        assert variables["vpsfleet_datacenter"] == server.datacenter
        assert server.name in members(inv, "dc_" + server.datacenter.replace("-", "_"))
        assert variables["vpsfleet_customer"]["id"] == server.customer
        assert variables["vpsfleet_delivery"] == {
            "delivered": server.delivered_on is not None,
            "paid_on": server.paid_on.isoformat(),
            "due_on": fleet.dedicated_due_on(server).isoformat(),
            "delivered_on": server.delivered_on.isoformat() if server.delivered_on else None,
        }


def test_a_suspended_dedicated_server_is_not_probed(tmp_path: Path) -> None:
    """Cut off at the edge (M7): a PING would only fail, and the SLA does not count it (M26)."""
    source = lab_variant(tmp_path, lambda text: text.replace(
        "    delivered_on: 2026-11-06  # within the 7 days (M12)",
        "    delivered_on: 2026-11-06  # within the 7 days (M12)\n    state: suspended\n"
        "    suspended_on: 2026-11-20"))
    icmp = hostvars(inventory_json(source), "labmon1")["vpsfleet_monitor_targets"]["icmp"]
    assert "alpha-dedi" not in {t["name"] for t in icmp}
    assert {t["name"] for t in icmp if t["kind"] == "guest"}  # the guests are still probed


def test_a_delivered_server_is_in_dedicated_delivered_only(tmp_path: Path) -> None:
    """Handed over (M12, M13): the sub-group no play of the provider's targets."""
    source = lab_variant(tmp_path, lambda text: text.replace(
        "    paid_on: 2026-12-01", "    paid_on: 2026-12-01\n    delivered_on: 2026-12-04"))
    inv = inventory_json(source)
    assert members(inv, "dedicated_delivered") == {"bravo-dedi", "alpha-dedi"}
    assert members(inv, "dedicated_pending") == set()
    delivery = hostvars(inv, "bravo-dedi")["vpsfleet_delivery"]
    assert delivery["delivered"] is True and delivery["delivered_on"] == "2026-12-04"
    # Delivered: the monitor now PINGs it (M26).
    icmp = hostvars(inv, "labmon1")["vpsfleet_monitor_targets"]["icmp"]
    assert {"name": "bravo-dedi", "kind": "server", "customer": "c-bravo",
            "address": "198.51.100.4"} in icmp  # fmt: skip


def test_a_server_without_an_address_is_not_in_the_inventory(tmp_path: Path) -> None:
    source = lab_variant(tmp_path, lambda text: text.replace("    ipv4: 198.51.100.4\n", ""))
    inv = inventory_json(source)
    assert "bravo-dedi" not in inv["_meta"]["hostvars"]
    # The groups still exist, empty, so that a play naming them matches nothing quietly.
    result = run_inventory("-i", str(source), "--graph", "dedicated")
    assert result.returncode == 0, result.stderr
    assert "@dedicated_pending:" in result.stdout


def test_a_dedicated_offer_with_backup_warns_and_stays_out_of_backup_clients(tmp_path: Path) -> None:
    """The backup service is per guest (planner, store accounts, quotas from the plan): a
    dedicated offer that says backup is not served, and the inventory says so."""
    source = lab_variant(tmp_path, lambda text: text.replace(
        "    backup: false  # the backup service is per guest (ansible/README.md)",
        "    backup: true\n    backup_retention_days: 15"))
    result = run_inventory("-i", str(source), "--list")
    assert result.returncode == 0, result.stderr
    assert "dedicated server bravo-dedi: offer dedicated says backup" in " ".join(result.stderr.split())
    inv = inventory_json(source)
    assert "bravo-dedi" not in members(inv, "backup_clients")
    assert "vpsfleet_backup" not in hostvars(inv, "bravo-dedi")


def test_constructed_options_apply_to_dedicated_servers(tmp_path: Path) -> None:
    source = constructed_source(
        tmp_path,
        "compose:\n"
        "  public_ipv4: vpsfleet_ipv4\n"
        "  delivery_due: vpsfleet_delivery.due_on\n"
        "keyed_groups:\n"
        "  - prefix: kind\n"
        "    key: vpsfleet_offer.kind\n"
        "groups:\n"
        "  to_deliver: vpsfleet_delivery is defined and not vpsfleet_delivery.delivered\n"
        "  english_customers: vpsfleet_customer is defined and vpsfleet_customer.language == 'en'\n",
    )
    inv = constructed_list(source)
    server = hostvars(inv, "bravo-dedi")
    assert server["public_ipv4"] == "198.51.100.4"
    assert server["delivery_due"] == "2026-12-08"
    assert "delivery_due" not in hostvars(inv, "alpha-web")  # not strict: skipped for guests
    assert members(inv, "kind_dedicated") == {"bravo-dedi", "alpha-dedi"}
    assert members(inv, "kind_managed_vps") == {"alpha-web", "alpha-app"}
    assert members(inv, "to_deliver") == {"bravo-dedi"}
    assert members(inv, "english_customers") == {"bravo-vps", "bravo-dev", "bravo-dedi"}
    # The plugin's own groups are all still there.
    assert members(inv, "dedicated_pending") == {"bravo-dedi"}


# --- the constructed options: compose, keyed_groups, groups, strict ------------------------------


def constructed_source(tmp_path: Path, options: str, plugin: str = "vpsfleet.platform.vpsfleet") -> Path:
    """An inventory source naming the lab fleet (a copy) with `options` added."""
    shutil.copy(REPO / "inventories" / "lab" / "fleet.yml", tmp_path / "fleet.yml")
    source = tmp_path / "vpsfleet.yml"
    source.write_text(f"plugin: {plugin}\nfleet: fleet.yml\n{options}")
    return source


def constructed_list(source: Path) -> dict[str, Any]:
    return inventory_json(source)


def test_inventory_sources_name_the_plugin_by_its_fqcn() -> None:
    """Every environment's source, the lab's too (Molecule's site scenario links it, with the
    checkout's collection in its collections path: molecule/shared/base.yml)."""
    names = {
        env: YAML(typ="safe").load((REPO / "inventories" / env / "vpsfleet.yml").read_text())["plugin"]
        for env in ("lab", "example-production")
    }
    assert names == {"lab": "vpsfleet.platform.vpsfleet", "example-production": "vpsfleet.platform.vpsfleet"}


def test_compose_sets_variables_from_the_fleets_and_the_environments(tmp_path: Path) -> None:
    source = constructed_source(
        tmp_path,
        "compose:\n"
        "  public_ipv4: vpsfleet_ipv4\n"
        "  site_label: vpsfleet_environment ~ '-' ~ vpsfleet_datacenter\n",
    )
    inv = constructed_list(source)
    web = hostvars(inv, "alpha-web")
    assert web["public_ipv4"] == "198.51.100.10"
    assert web["site_label"] == "lab-lab-a"
    # The store has no vpsfleet_ipv4: not strict, so that entry is skipped for it, not fatal.
    store = hostvars(inv, "labstore1")
    assert "public_ipv4" not in store
    assert store["site_label"] == "lab-lab-b"
    # The plugin's own variables and groups are all still there.
    assert web["vpsfleet_plan"]["name"] == "vps-m"
    assert members(inv, "managed") == {"alpha-web", "alpha-app"}


def test_keyed_groups_group_hosts_by_a_variables_value(tmp_path: Path) -> None:
    source = constructed_source(
        tmp_path,
        "keyed_groups:\n"
        "  - prefix: plan\n"
        "    key: vpsfleet_plan.name\n"
        "  - prefix: lang\n"
        "    key: vpsfleet_customer.language\n"
        "    parent_group: customers_by_language\n"
        "  - key: vpsfleet_backup.store.name\n"
        "    prefix: store\n"
        "    separator: '__'\n",
    )
    inv = constructed_list(source)
    assert members(inv, "plan_vps_m") == {"alpha-web"}
    assert members(inv, "plan_vps_s") == {"alpha-app", "bravo-vps", "bravo-dev"}
    assert members(inv, "lang_fr") == {"alpha-web", "alpha-app", "alpha-dedi"}
    assert members(inv, "lang_en") == {"bravo-vps", "bravo-dev", "bravo-dedi"}
    assert set(inv["customers_by_language"]["children"]) == {"lang_fr", "lang_en"}
    # Every lab guest's datacenter is kept by labstore1 (with or without the backup service).
    assert members(inv, "store__labstore1") == members(inv, "guests")


def test_groups_add_hosts_whose_condition_holds(tmp_path: Path) -> None:
    source = constructed_source(
        tmp_path,
        "groups:\n"
        "  french_customers: vpsfleet_customer is defined and vpsfleet_customer.language == 'fr'\n"
        "  backup_late: vpsfleet_backup is defined and vpsfleet_backup.enabled"
        " and not vpsfleet_backup.fits\n"
        "  lab_infrastructure: vpsfleet_datacenter == 'lab-b'\n",
    )
    inv = constructed_list(source)
    assert members(inv, "french_customers") == {"alpha-web", "alpha-app", "alpha-dedi"}
    assert members(inv, "lab_infrastructure") == {"labstore1", "labmon1"}
    # Every lab backup fits in the night: the group exists in no host's list.
    assert members(inv, "backup_late") == set()


def test_strict_makes_a_broken_expression_fail_the_inventory(tmp_path: Path) -> None:
    options = "compose:\n  public_ipv4: vpsfleet_ipv4\n"
    lenient = constructed_source(tmp_path, options + "strict: false\n")
    assert run_inventory("-i", str(lenient), "--list").returncode == 0
    strict = constructed_source(tmp_path, options + "strict: true\n")
    result = run_inventory("-i", str(strict), "--list", "-v")
    assert result.returncode != 0
    # The first host without an address (the hypervisor) stops it, and the message says so.
    assert "Could not set public_ipv4 for host labhv1" in result.stderr
    # Only the plugin the source names tries it: no warning from the short name's.
    assert "Incorrect plugin name" not in result.stderr


def test_the_short_name_of_the_older_wiring_still_works(tmp_path: Path) -> None:
    """`plugin: vpsfleet` through ansible.cfg's inventory_plugins, until every source says the FQCN."""
    source = constructed_source(tmp_path, "keyed_groups:\n  - {prefix: plan, key: vpsfleet_plan.name}\n",
                                plugin="vpsfleet")  # fmt: skip
    inv = constructed_list(source)
    assert members(inv, "managed") == {"alpha-web", "alpha-app"}
    assert members(inv, "plan_vps_m") == {"alpha-web"}


def test_ansible_doc_documents_every_option_and_the_examples() -> None:
    result = subprocess.run(
        [str(BIN / "ansible-doc"), "-t", "inventory", "--json", "vpsfleet.platform.vpsfleet"],
        cwd=REPO / "ansible", env=ansible_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)["vpsfleet.platform.vpsfleet"]
    options = doc["doc"]["options"]
    for option in ("plugin", "fleet", "compose", "groups", "keyed_groups", "strict"):
        assert options[option]["description"], option
    assert "vpsfleet.platform.vpsfleet" in options["plugin"]["choices"]
    assert "plugin: vpsfleet.platform.vpsfleet" in doc["examples"]
    described = " ".join(doc["doc"]["description"])
    # Every host variable the plugin sets is documented.
    inv = inventory_json(REPO / "inventories" / "example-production" / "vpsfleet.yml")
    set_by_plugin = {k for hv in inv["_meta"]["hostvars"].values() for k in hv}
    for variable in sorted(set_by_plugin):
        assert f"C({variable})" in described, variable


def test_the_documented_example_works_on_the_lab(tmp_path: Path) -> None:
    """The EXAMPLES of the plugin, as written, on the lab fleet (its path substituted)."""
    example = list(YAML(typ="safe").load_all(plugin_constant("EXAMPLES")))[-1]
    example["fleet"] = "fleet.yml"
    shutil.copy(REPO / "inventories" / "lab" / "fleet.yml", tmp_path / "fleet.yml")
    with (tmp_path / "vpsfleet.yml").open("w") as out:
        YAML().dump(example, out)
    inv = inventory_json(tmp_path / "vpsfleet.yml")
    assert hostvars(inv, "alpha-web")["public_ipv4"] == "198.51.100.10"
    assert members(inv, "plan_vps_m") == {"alpha-web"}
    assert members(inv, "store_labstore1") == members(inv, "guests")
    assert "store_labstore1" in inv["stores_of_guests"]["children"]
    assert members(inv, "french_customers") == {"alpha-web", "alpha-app", "alpha-dedi"}
    assert members(inv, "due_2026_12_08") == {"bravo-dedi"}
    assert "due_2026_12_08" in inv["dedicated_by_due_date"]["children"]


def test_lab_hypervisor_without_address_is_not_reachable(inventory_of: Inventory) -> None:
    """labhv1 is the machine the lab runs on (no `ipv4`): in `hypervisors`, not in
    `hypervisors_reachable`, the group site.yml applies role hypervisor to, so that no play tries
    to reach it by its name; labhv2, with an address, is."""
    inv = inventory_of("lab")
    assert members(inv, "hypervisors") == {"labhv1", "labhv2"}
    assert members(inv, "hypervisors_reachable") == {"labhv2"}
    assert "ansible_host" not in hostvars(inv, "labhv1")
    assert hostvars(inv, "labhv2")["ansible_host"] == "198.51.100.250"
    result = run_inventory("--graph", "hypervisors")
    assert result.returncode == 0, result.stderr
    assert "@hypervisors_reachable:" in result.stdout


def test_lab_hypervisor_variables_give_its_pool_images_and_guests_quotas(inventory_of: Inventory) -> None:
    hv = hostvars(inventory_of("lab"), "labhv1")
    assert hv["vpsfleet_bridge"] == "br-lab"
    assert hv["vpsfleet_storage_pool"] == "default"  # the schema's default
    assert hv["vpsfleet_images"] == {"debian-12": "debian-12-genericcloud-amd64.qcow2"}
    assert hv["vpsfleet_time_zone"] == "Europe/Paris"
    assert hv["vpsfleet_policy_filter"]["icmp_connlimit"] == 10
    guests = hv["vpsfleet_hypervisor_guests"]
    assert [g["name"] for g in guests] == ["alpha-app", "alpha-web", "bravo-dev", "bravo-vps"]
    web = next(g for g in guests if g["name"] == "alpha-web")
    assert web == {
        "name": "alpha-web",
        "state": "active",
        "customer": {"id": "c-alpha", "name": "Alpha Boulangerie SARL",
                     "email": "admin@alpha.example.com", "language": "fr"},
        "plan": {"name": "vps-m", "vcpu": 2, "ram_mb": 2048, "disk_gb": 40, "bandwidth_mbps": 100,
                 "monthly_quota_tb": 10.0, "throttle_mbps": 1},
        "monthly_quota_bytes": 10 * 10**12,  # M8: 10 TB
    }  # fmt: skip
    assert next(g for g in guests if g["name"] == "bravo-dev")["customer"]["language"] == "en"


def test_production_hypervisors_with_an_address_are_reachable_and_list_live_guests_only(
    inventory_of: Inventory,
) -> None:
    fleet = load_fleet(REPO / "inventories" / "example-production" / "fleet.yml")
    inv = inventory_of("example-production")
    assert members(inv, "hypervisors_reachable") == {h.name for h in fleet.hosts if h.ipv4 is not None}
    for host in fleet.hosts:
        listed = {g["name"]: g for g in hostvars(inv, host.name)["vpsfleet_hypervisor_guests"]}
        live = {g.name for g in fleet.guests if g.host == host.name and g.state.value != "terminated"}
        assert set(listed) == live, host.name
    sbg = {g["name"]: g for g in hostvars(inv, "hv-sbg1-01")["vpsfleet_hypervisor_guests"]}
    assert sbg["g0006-dev1"]["state"] == "suspended"  # still running: its traffic still counts
    assert "g0010-app5" not in sbg  # terminated (M11)


def test_a_fractional_quota_is_exact_in_bytes(tmp_path: Path) -> None:
    source = lab_variant(tmp_path, lambda text: text.replace(
        "    monthly_quota_tb: 10  # M8\n", "    monthly_quota_tb: 0.3  # M8\n"))
    guests = hostvars(inventory_json(source), "labhv1")["vpsfleet_hypervisor_guests"]
    assert {g["monthly_quota_bytes"] for g in guests if g["plan"]["name"] == "vps-s"} == {300_000_000_000}


def test_an_edge_router_is_in_edge_routers_with_the_fleet_file(tmp_path: Path) -> None:
    """A datacenter's edge router (004: M5-M7, M28): reached at its management address; role
    edge_router renders its ruleset from the very file the inventory read."""
    source = lab_variant(tmp_path, lambda text: text.replace(
        "      name: labedge1\n      address: 198.51.100.254\n",
        "      name: lab-edge-a\n      address: 198.51.100.254\n"))
    inv = inventory_json(source)
    assert members(inv, "edge_routers") == {"lab-edge-a"}
    assert "lab-edge-a" in members(inv, "dc_lab_a")
    router = hostvars(inv, "lab-edge-a")
    assert router["ansible_host"] == "198.51.100.254" and router["vpsfleet_datacenter"] == "lab-a"
    assert router["vpsfleet_fleet_file"] == str((tmp_path / "fleet.yml").resolve())


def test_the_monitor_gets_the_audit_policy(inventory_of: Inventory) -> None:
    audit = hostvars(inventory_of("lab"), "labmon1")["vpsfleet_policy_audit"]  # M29
    assert audit["time"] == "04:30" and audit["max_rate"] == 100
    assert "6667/tcp" in audit["ports"]["irc"] or "6660-6669/tcp" in audit["ports"]["irc"]
