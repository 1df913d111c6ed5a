"""The Pulumi program under Pulumi's mocks, on the lab and example-production fleets."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import warnings
from typing import Any

import pytest
from pulumi.runtime import rpc

from tests.pulumi.fleets import ENVIRONMENTS, REPO, fleet, with_guest
from tests.pulumi.harness import NOW, Registration, Run, run_main, run_program
from vpsfleet.fleet import Fleet
from vpsfleet.schema import GuestState, Mitigation, SmtpBlock

GIB = 1024**3
TYPES = {
    "filter": "dynamic/vpsfleet:NwFilter",
    "volume": "libvirt:index/volume:Volume",
    "seed": "libvirt:index/cloudInitDisk:CloudInitDisk",
    "domain": "libvirt:index/domain:Domain",
}


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> tuple[Fleet, Run]:
    f = fleet(request.param)
    return f, run_program(f)


@pytest.fixture(scope="module")
def production() -> tuple[Fleet, Run]:
    f = fleet("example-production")
    return f, run_program(f)


def guest_resources(run: Run, name: str) -> dict[str, Registration]:
    return {
        "filter": run.named(f"{name}-filter", TYPES["filter"]),
        "volume": run.named(f"{name}-root.qcow2", TYPES["volume"]),
        "seed": run.named(f"{name}-seed.iso", TYPES["seed"]),
        "domain": run.named(name, TYPES["domain"]),
    }


def unsecret(value: object) -> object:
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return value["value"]
    return value


def is_secret(value: object) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def test_one_libvirt_provider_per_host_from_its_uri(env: tuple[Fleet, Run]) -> None:
    f, run = env
    providers = run.of_type("pulumi:providers:libvirt")
    assert {p.name: p.inputs["uri"] for p in providers} == \
        {f"{h.name}-libvirt": h.uri for h in f.hosts}
    for guest in f.live_guests():
        for kind in ("volume", "seed", "domain"):
            reg = guest_resources(run, guest.name)[kind]
            assert reg.provider.split("::")[-2] == f"{guest.host}-libvirt", (guest.name, kind)


def test_every_live_guest_is_a_component_on_its_host(env: tuple[Fleet, Run]) -> None:
    f, run = env
    components = run.of_type("vpsfleet:infra:Guest")
    assert sorted(c.name for c in components) == sorted(g.name for g in f.live_guests())
    for component in components:
        guest = f.guest(component.name)
        assert guest is not None
        assert component.parent.endswith(f"vpsfleet:infra:Host::{guest.host}")
    assert len(run.of_type(TYPES["domain"])) == len(f.live_guests())
    assert sorted(h.name for h in run.of_type("vpsfleet:infra:Host")) == \
        sorted(h.name for h in f.hosts)


def test_root_volume_is_protected_its_size_ignored_and_replaced_delete_first(
        env: tuple[Fleet, Run]) -> None:
    f, run = env
    for guest in f.live_guests():
        volume = guest_resources(run, guest.name)["volume"]
        host, plan = f.host(guest.host), f.plan(guest.plan)
        assert host is not None and plan is not None
        assert volume.protect
        assert "size" in volume.ignore_changes
        assert volume.delete_before_replace
        assert volume.inputs["name"] == f"{guest.name}-root.qcow2"
        assert volume.inputs["pool"] == host.storage_pool
        assert volume.inputs["baseVolumeName"] == host.images[guest.image]
        assert volume.inputs["baseVolumePool"] == host.storage_pool
        assert volume.inputs["size"] == plan.disk_gb * GIB


def test_domain_has_the_plan_the_host_type_and_a_filtered_shaped_interface(
        env: tuple[Fleet, Run]) -> None:
    f, run = env
    macs, interfaces = set(), set()
    for guest in f.live_guests():
        res = guest_resources(run, guest.name)
        domain = res["domain"]
        host, plan = f.host(guest.host), f.plan(guest.plan)
        assert host is not None and plan is not None
        assert domain.inputs["name"] == guest.name
        assert domain.inputs["vcpu"] == plan.vcpu and domain.inputs["memory"] == plan.ram_mb
        assert domain.inputs["type"] == host.domain_type
        assert domain.inputs["running"] is True
        assert domain.delete_before_replace
        [nic] = domain.inputs["networkInterfaces"]
        assert nic["bridge"] == host.bridge
        assert domain.inputs["disks"] == [{"volumeId": f"{guest.name}-root.qcow2-id"}]
        assert domain.inputs["cloudinit"] == f"{guest.name}-seed.iso-id"
        xslt = domain.inputs["xml"]["xslt"]
        rate = plan.bandwidth_mbps * 1000 // 8
        assert f'<filterref filter="vpsfleet-{guest.name}">' in xslt
        assert f'<parameter name="IP" value="{guest.ipv4}"/>' in xslt
        assert f'<inbound average="{rate}"/>' in xslt and f'<outbound average="{rate}"/>' in xslt
        assert nic["mac"].lower() in xslt
        macs.add(nic["mac"])
        interfaces.add(run.outputs["guests"][guest.name]["interface"])
        # The filter exists before the domain that references it.
        assert res["filter"].urn in domain.dependencies
    assert len(macs) == len(interfaces) == len(f.live_guests())
    assert all(len(name) <= 15 for name in interfaces)
    assert all(int(mac.split(":")[0], 16) & 0b11 == 0b10 for mac in macs)  # local, unicast


def test_filter_state_holds_name_uri_and_xml_only(env: tuple[Fleet, Run]) -> None:
    f, run = env
    for guest in f.live_guests():
        flt = guest_resources(run, guest.name)["filter"]
        host = f.host(guest.host)
        assert host is not None
        assert flt.inputs["name"] == f"vpsfleet-{guest.name}"
        assert flt.inputs["uri"] == host.uri
        assert flt.inputs["xml"].startswith(f'<filter name="vpsfleet-{guest.name}"')
        assert set(flt.inputs) == {"name", "uri", "xml", "__provider"}
        assert not any(is_secret(v) for v in flt.inputs.values())


def test_cloud_init_gives_the_fixed_ipv4_from_the_guests_pool(env: tuple[Fleet, Run]) -> None:
    f, run = env
    for guest in f.live_guests():
        assert guest.ipv4 is not None
        found = f.pool_of(guest.ipv4)
        assert found is not None
        datacenter, pool = found
        seed = guest_resources(run, guest.name)["seed"]
        config = json.loads(seed.inputs["networkConfig"])
        [eth] = config["ethernets"].values()
        assert eth["addresses"] == [f"{guest.ipv4}/{pool.network.prefixlen}"]
        assert eth["routes"] == [{"to": "default", "via": str(pool.gateway)}]
        assert eth["nameservers"]["addresses"] == [str(r) for r in datacenter.dns_resolvers]
        assert ipaddress.IPv4Address(eth["addresses"][0].split("/")[0]) in pool.network
        assert eth["match"]["macaddress"] == run.outputs["guests"][guest.name]["mac"]


def test_root_keys_are_the_operators_on_managed_and_the_customers_with_the_handover_key_otherwise(
        env: tuple[Fleet, Run]) -> None:
    f, run = env
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    operators = sorted(k for o in f.provider.operators for k in o.ssh_keys)
    seen = set()
    for guest in f.live_guests():
        seed = guest_resources(run, guest.name)["seed"]
        assert is_secret(seed.inputs["userData"]), "the seed carries the initial password"
        text = str(unsecret(seed.inputs["userData"]))
        assert text.startswith("#cloud-config\n")
        user_data = json.loads(text.split("\n", 1)[1])
        root = next(u for u in user_data["users"] if u["name"] == "root")
        offer, customer = f.offer(guest.offer), f.customer(guest.customer)
        assert offer is not None and customer is not None
        if offer.root == "provider":
            assert sorted(root["ssh_authorized_keys"]) == operators
            assert not set(customer.ssh_keys) & set(root["ssh_authorized_keys"])
        else:
            # The customer's keys, and the hand-over key that handover.yml removes (M13).
            assert root["ssh_authorized_keys"] == customer.ssh_keys + f.provider.handover_keys
            assert f.provider.handover_keys
            assert not set(operators) & set(root["ssh_authorized_keys"])
        assert user_data["ssh_pwauth"] is False
        assert user_data["hostname"] == guest.name
        [account] = user_data["chpasswd"]["users"]
        assert account["name"] == ("client" if offer.root == "provider" else "root")
        # Expiring root's would make sshd refuse the hand-over's key login (docs/handover.md).
        assert user_data["chpasswd"]["expire"] is (offer.root == "provider")
        password = run.outputs["initial_passwords"][guest.name]
        assert account["type"] == "hash" and password not in text  # never in clear on the host
        assert crypt.crypt(password, account["password"]) == account["password"]
        seen.add(offer.root)
    assert seen == {"provider", "customer"}


def test_initial_passwords_are_distinct_and_stable(env: tuple[Fleet, Run]) -> None:
    f, run = env
    passwords = run.outputs["initial_passwords"]
    assert len(set(passwords.values())) == len(passwords) == len(f.live_guests())
    assert all(len(p) >= 20 for p in passwords.values())
    assert run_program(f).outputs["initial_passwords"] == passwords


def test_stack_outputs_give_operators_each_guest_and_host(env: tuple[Fleet, Run]) -> None:
    f, run = env
    for guest in f.live_guests():
        out = run.outputs["guests"][guest.name]
        assert out["host"] == guest.host and out["ipv4"] == str(guest.ipv4)
        assert out["filter"] == f"vpsfleet-{guest.name}" and out["state"] == guest.state.value
    for host in f.hosts:
        used = run.outputs["hosts"][host.name]
        assert used["disk_limit_gb"] == host.capacity.disk_gb
        assert used["guests"] == sum(1 for g in f.live_guests() if g.host == host.name)


def test_terminated_guest_has_no_resources(production: tuple[Fleet, Run]) -> None:
    f, run = production
    terminated = [g.name for g in f.guests if g.state is GuestState.TERMINATED]
    assert terminated and run.outputs["terminated"] == terminated
    for name in terminated:
        assert not any(r.name.startswith(name) for r in run.registrations)


def test_terminating_a_lab_guest_removes_exactly_its_resources() -> None:
    lab = fleet("lab")
    before = run_program(lab).names()
    after = run_program(with_guest(lab, "bravo-dev", state=GuestState.TERMINATED,
                                   terminated_on=dt.date(2026, 11, 23))).names()
    assert before - after == {"bravo-dev", "bravo-dev-filter", "bravo-dev-root.qcow2",
                              "bravo-dev-seed.iso"}
    assert after <= before


def test_dedicated_servers_are_reported_with_due_date_and_overdue_flag() -> None:
    prod = fleet("example-production")
    late = prod.dedicated_servers[-1]
    assert late.delivered_on is None
    outputs = run_program(prod, NOW.replace(year=2027)).outputs["dedicated_servers"]
    assert outputs[late.name]["overdue"] is True
    assert outputs[late.name]["ipv4"] == str(late.ipv4)
    assert run_program(prod).outputs["dedicated_servers"][late.name]["overdue"] is False


# --- what changes when the fleet changes ---------------------------------------------------------


def _inputs(run: Run) -> dict[tuple[str, str], dict[str, object]]:
    return {(r.type, r.name): r.inputs for r in run.registrations}


def test_a_plan_change_replaces_no_volume() -> None:
    lab = fleet("lab")
    before = run_program(lab)
    after = run_program(with_guest(lab, "bravo-vps", plan="vps-m"))
    old, new = (guest_resources(r, "bravo-vps")["volume"] for r in (before, after))
    assert new.inputs["size"] > old.inputs["size"]
    assert "size" in new.ignore_changes and new.protect
    assert {k: v for k, v in old.inputs.items() if k != "size"} == \
        {k: v for k, v in new.inputs.items() if k != "size"}
    # vCPU/RAM change the domain (a planned replacement, M9); the filter does not move.
    old_dom, new_dom = (guest_resources(r, "bravo-vps")["domain"] for r in (before, after))
    assert (new_dom.inputs["vcpu"], new_dom.inputs["memory"]) == (2, 2048)
    assert old_dom.inputs["disks"] == new_dom.inputs["disks"]


ONLY_FILTER_CHANGES: dict[str, dict[str, Any]] = {
    "smtp block": {"smtp_blocks": [SmtpBlock(blocked_at=NOW - dt.timedelta(hours=1), until=None,
                                             reason="spam")]},
    "suspension": {"state": GuestState.SUSPENDED, "suspended_on": NOW.date()},
    "mitigation": {"mitigation": Mitigation(since=NOW - dt.timedelta(hours=1), profile="web")},
}


@pytest.mark.parametrize("change", sorted(ONLY_FILTER_CHANGES))
def test_smtp_block_suspension_and_mitigation_change_only_the_filter(change: str) -> None:
    lab = fleet("lab")
    before = _inputs(run_program(lab))
    after = _inputs(run_program(with_guest(lab, "bravo-vps", **ONLY_FILTER_CHANGES[change])))
    assert before.keys() == after.keys()
    changed = {key for key in before if before[key] != after[key]}
    filter_key = ("pulumi-python:dynamic/vpsfleet:NwFilter", "bravo-vps-filter")
    # The guest's state shows in its component's outputs only; nothing else moves.
    assert changed == {filter_key}
    assert before[filter_key]["name"] == after[filter_key]["name"]


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_each_stack_file_names_its_fleet_and_the_entry_point_declares_it(
        stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ruamel.yaml import YAML

    program_dir = REPO / "pulumi"
    project = YAML(typ="safe").load((program_dir / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "../.venv"
    config = YAML(typ="safe").load((program_dir / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert (program_dir / config["vpsfleet:fleet"]).resolve() == \
        (REPO / "inventories" / stack / "fleet.yml").resolve()
    monkeypatch.chdir(program_dir)
    run = run_main(stack, {**config, "vpsfleet:passwordSeed": "seed",
                           "vpsfleet:now": NOW.isoformat()}, ["vpsfleet:passwordSeed"])
    assert len(run.of_type(TYPES["domain"])) == len(fleet(stack).live_guests())


def test_the_dynamic_provider_loads_in_the_engines_provider_host() -> None:
    """The engine runs `python -m pulumi.dynamic` in the project folder (pulumi/) and unpickles
    the provider there: it must import from that folder alone, without our sys.path."""
    import subprocess
    import sys

    from pulumi.dynamic.dynamic import serialize_provider
    from vpsfleet_infra.nwfilter import NwFilterProvider

    pickled = serialize_provider(NwFilterProvider())
    script = (
        "import base64, sys, dill\n"
        "provider = dill.loads(base64.b64decode(sys.stdin.read()))\n"
        "olds = {'name': 'f', 'uri': 'qemu:///system', 'xml': '<a/>'}\n"
        "diff = provider.diff('f', olds, {**olds, 'xml': '<b/>'})\n"
        "print(type(provider).__module__, diff.changes, diff.replaces)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], input=pickled, text=True,
                          capture_output=True, cwd=REPO / "pulumi", check=False,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["vpsfleet_infra.nwfilter", "True", "[]"]


def test_a_mac_or_interface_collision_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from vpsfleet_infra import identity
    from vpsfleet_infra.program import check_identities

    lab = fleet("lab")
    check_identities(lab)
    monkeypatch.setattr(identity, "interface_name", lambda _guest: "vf-same")
    with pytest.raises(ValueError, match="same interface vf-same"):
        check_identities(lab)


def test_identities_are_stable_and_fit_the_kernel() -> None:
    from vpsfleet_infra import identity

    # Pinned: a MAC or tap name that changed would break running guests' network config.
    assert identity.mac_address("alpha-web") == "02:33:15:d8:f2:e0"
    assert identity.interface_name("alpha-web") == "vf-b5fd2d8eb371"
    long_name = "a" * 63
    assert len(identity.interface_name(long_name)) <= 15
