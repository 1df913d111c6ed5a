"""Properties of allocation, checked on generated fleets (hypothesis)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from vpsfleet.ipam import AllocationError, allocate, lowest_free, release
from vpsfleet.loader import load_fleet, parse

from .conftest import CORPUS, TODAY

QUARANTINE_DAYS = 90


def base_fleet() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load((CORPUS / "valid-minimal.yml").read_text())
    data["policy"] = {"ipv4_quarantine_days": QUARANTINE_DAYS}
    data["hosts"][0]["capacity"] = {"vcpu": 512, "ram_mb": 2**22, "disk_gb": 100000}
    data["hosts"][0].pop("ipv4")
    return data


@st.composite
def pools_and_claims(draw: st.DrawFn) -> dict[str, Any]:
    prefix = draw(st.integers(min_value=26, max_value=29))
    network = ipaddress.IPv4Network(f"198.51.100.0/{prefix}")
    hosts = list(network.hosts())
    gateway = draw(st.sampled_from(hosts))
    reserved = draw(st.lists(st.sampled_from(hosts), max_size=4, unique=True))
    # A management network (M7) inside the pool, or none: no machine there, nothing offered.
    management = draw(st.none() | st.sampled_from(list(network.subnets(new_prefix=30))))
    others = [a for a in hosts if a != gateway and a not in reserved
              and (management is None or a not in management)]
    used = draw(st.lists(st.sampled_from(others), max_size=len(others), unique=True)) if others else []
    quarantined = draw(st.lists(
        st.tuples(st.sampled_from(hosts), st.integers(min_value=0, max_value=200)),
        max_size=4))  # an address may have been released twice, entries in any order
    data = base_fleet()
    data["provider"]["management_networks"] = [str(management)] if management else []
    data["datacenters"][0]["pools"] = [{
        "name": "p", "network": str(network), "gateway": str(gateway),
        "reserved": [str(a) for a in reserved],
    }]
    data["guests"] = [
        {"name": f"g{i}", "created": TODAY, "customer": "c1", "offer": "unmanaged", "plan": "s",
         "host": "hv1", "image": "debian-12", "ipv4": str(a)} for i, a in enumerate(used)
    ]
    data["quarantine"] = [
        {"ipv4": str(a), "released_on": TODAY - dt.timedelta(days=age), "guest": "old"}
        for a, age in quarantined if a not in used
    ]
    return data


@settings(max_examples=200, deadline=None)
@given(pools_and_claims())
def test_allocation_never_returns_a_used_reserved_quarantined_management_or_foreign_address(
    data: dict[str, Any],
) -> None:
    fleet, problems = parse(data, Path("generated.yml"))
    assert fleet is not None and problems == []
    pool = fleet.datacenters[0].pools[0]
    held = {g.ipv4 for g in fleet.guests}
    waiting = {q.ipv4 for q in fleet.quarantine
               if q.released_on + dt.timedelta(days=QUARANTINE_DAYS) > TODAY}
    # The oracle: every address of the pool that may be given, by brute force.
    allowed = [a for a in pool.network
               if a not in (pool.network.network_address, pool.network.broadcast_address,
                            pool.gateway)
               and a not in pool.reserved and a not in held and a not in waiting
               and not any(a in n for n in fleet.provider.management_networks)]
    try:
        address = lowest_free(fleet, "dc-a", TODAY)
    except AllocationError:
        assert allowed == []
        return
    assert address == min(allowed)


def edit(path: Path, change: Any) -> None:
    yaml = YAML()
    doc = yaml.load(path.read_text())
    change(doc)
    with path.open("w") as handle:
        yaml.dump(doc, handle)


operations = st.lists(
    st.one_of(st.just(("add", 0)), st.tuples(st.just("terminate"), st.integers(0, 30))),
    min_size=1, max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_adding_and_removing_guests_never_renumbers_another(ops: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fleet.yml"
        data = base_fleet()
        data["guests"] = []
        yaml = YAML()
        with path.open("w") as handle:
            yaml.dump(data, handle)
        known: dict[str, ipaddress.IPv4Address] = {}
        counter = 0
        for op, which in ops:
            live = sorted(known)
            if op == "add":
                counter += 1
                name = f"n{counter}"
                edit(path, lambda doc, n=name: doc["guests"].append({
                    "name": n, "created": TODAY, "customer": "c1", "offer": "unmanaged", "plan": "s",
                    "host": "hv1", "image": "debian-12"}))
                known[name] = allocate(path, name, today=TODAY)
            elif live:
                name = live[which % len(live)]

                def terminate(doc: Any, n: str = name) -> None:
                    guest = next(g for g in doc["guests"] if g["name"] == n)
                    guest["state"] = "terminated"
                    guest["terminated_on"] = TODAY

                edit(path, terminate)
                assert release(path, name, today=TODAY) == known.pop(name)
            fleet = load_fleet(path, today=TODAY)
            now = {g.name: g.ipv4 for g in fleet.guests if g.ipv4 is not None}
            assert now == known  # nobody else moved
            assert len(set(now.values())) == len(now)
