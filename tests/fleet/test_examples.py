"""The two example environments are valid and cover what the issue asks of them."""

from __future__ import annotations

import ipaddress

from vpsfleet.loader import load_fleet
from vpsfleet.schema import GuestState, OfferKind

from .conftest import REPO, TODAY

DOC_RANGES = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]


def test_lab_has_two_hosts_managed_and_unmanaged_guests_a_database_and_an_offsite_store() -> None:
    fleet = load_fleet(REPO / "inventories/lab/fleet.yml", today=TODAY)
    assert [h.uri for h in fleet.hosts] == ["qemu:///system"] * 2
    # The guests' host is the machine the lab runs on (no address: no play reaches it); the
    # other is a container the site configures (hypervisors_reachable) and hosts no guest.
    [here, reached] = fleet.hosts
    assert here.ipv4 is None and reached.ipv4 is not None
    assert {g.host for g in fleet.guests} == {here.name}
    # lab-a's dedicated servers have an edge router (role edge_router), at a reserved address
    # (the model claims no edge router's address: ipam must not give it to a guest).
    [router] = [dc.edge_router for dc in fleet.datacenters if dc.edge_router is not None]
    pool = fleet.pool_of(router.address)
    assert pool is not None and router.address in pool[1].reserved
    assert 3 <= len(fleet.guests) <= 4
    kinds = {fleet.offer(g.offer).kind for g in fleet.guests}  # type: ignore[union-attr]
    assert {OfferKind.MANAGED_VPS, OfferKind.UNMANAGED_VPS} <= kinds
    assert any("mariadb" in g.services for g in fleet.guests)
    guest_dcs = {fleet.guest_datacenter(g) for g in fleet.guests}
    assert all(s.datacenter not in guest_dcs for s in fleet.backup_stores)


def test_lab_has_a_dedicated_server_pending_and_one_delivered_in_the_guests_pool() -> None:
    """M12: the lab installs the pending one (site.yml's pending servers) and hands the delivered
    one over (handover.yml), as containers beside the guests."""
    fleet = load_fleet(REPO / "inventories/lab/fleet.yml", today=TODAY)
    [delivered] = [s for s in fleet.dedicated_servers if s.delivered_on is not None]
    assert delivered.delivered_on is not None
    assert delivered.delivered_on <= fleet.dedicated_due_on(delivered)  # on time (M12)
    [server] = [s for s in fleet.dedicated_servers if s.delivered_on is None]
    assert server.ipv4 is not None and delivered.ipv4 is not None
    assert server.customer != delivered.customer
    assert fleet.customer(server.customer) is not None
    offer = fleet.offer(server.offer)
    assert offer is not None and offer.kind is OfferKind.DEDICATED and not offer.backup
    due = fleet.dedicated_due_on(server)
    assert (due - server.paid_on).days == fleet.policy.dedicated_delivery_days
    found = fleet.pool_of(server.ipv4)
    assert found is not None and found[0].code == server.datacenter
    guest_pools = {where[1].name for g in fleet.guests if g.ipv4 and (where := fleet.pool_of(g.ipv4))}
    assert found[1].name in guest_pools


def test_example_production_uses_every_offer_and_plan_across_three_datacenters() -> None:
    fleet = load_fleet(REPO / "inventories/example-production/fleet.yml", today=TODAY)
    assert len(fleet.datacenters) == 3
    assert all(sum(h.datacenter == dc.code for h in fleet.hosts) >= 2 for dc in fleet.datacenters)
    assert 35 <= len(fleet.guests) <= 45
    assert len(fleet.backup_stores) == 2
    used_offers = {g.offer for g in fleet.guests} | {s.offer for s in fleet.dedicated_servers}
    assert used_offers == {o.name for o in fleet.offers}
    assert {g.plan for g in fleet.guests} == {p.name for p in fleet.plans}
    assert {g.state for g in fleet.guests} == set(GuestState)


def test_examples_use_documentation_ranges_only() -> None:
    for env in ("lab", "example-production"):
        fleet = load_fleet(REPO / "inventories" / env / "fleet.yml", today=TODAY)
        for dc in fleet.datacenters:
            for pool in dc.pools:
                assert any(pool.network.subnet_of(r) for r in DOC_RANGES), pool.network  # type: ignore[arg-type]
