"""The NoCloud seeds the lab and the site scenario boot from: the program's own user data for
guests, the operators' keys for the provider's machines, the lab's keys in place of the fleet's."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from vpsfleet_infra import cloudinit, nocloud
from vpsfleet_infra.access import initial_password

from tests.pulumi.fleets import fleet
from vpsfleet.fleet import Fleet

KEYS = {role: f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{role.upper():X<40} {role}@test"
        for role in ("operator", "handover", "customer")}


@pytest.fixture(scope="module")
def lab() -> Fleet:
    return nocloud.with_lab_keys(fleet("lab"), **KEYS)


def root_keys(user_data: str) -> list[str]:
    assert user_data.startswith("#cloud-config\n")
    config = json.loads(user_data.split("\n", 1)[1])
    [root] = [u for u in config["users"] if u["name"] == "root"]
    return list(root["ssh_authorized_keys"])


def test_the_lab_keys_replace_every_key_of_the_fleet(lab: Fleet) -> None:
    assert [k for o in lab.provider.operators for k in o.ssh_keys] == [KEYS["operator"]]
    assert lab.provider.handover_keys == [KEYS["handover"]]
    assert {k for c in lab.customers for k in c.ssh_keys} == {KEYS["customer"]}
    assert fleet("lab").provider.handover_keys != lab.provider.handover_keys  # a copy


def test_lab_seeds_are_the_programs_user_data(lab: Fleet, tmp_path: Path) -> None:
    written = nocloud.lab_seeds(lab, tmp_path, "seed", ["mailsink"])
    guests = [g for g in lab.live_guests() if g.ipv4 is not None]
    servers = [s.name for s in lab.dedicated_servers if s.ipv4 is not None]
    provider = [s.name for s in lab.backup_stores] + [m.name for m in lab.monitors]
    # the hypervisors the site reaches and the edge routers: provider machines too
    provider += [h.name for h in lab.hosts if h.ipv4 is not None]
    provider += [dc.edge_router.name for dc in lab.datacenters if dc.edge_router is not None]
    assert "labhv1" not in provider and {"labhv2", "labedge1"} <= set(provider)
    assert written == [g.name for g in guests] + servers + provider + ["mailsink"]
    for guest in guests:
        seed = tmp_path / guest.name
        password = initial_password("seed", lab.environment, guest.name)
        assert (seed / "user-data").read_text() == cloudinit.user_data(lab, guest, password)
        assert json.loads((seed / "meta-data").read_text())["instance-id"] == guest.name
        assert json.loads((seed / "network-config").read_text()) == {"network": {"config": "disabled"}}
        keys = root_keys((seed / "user-data").read_text())
        offer = lab.offer(guest.offer)
        assert offer is not None
        if offer.root == "provider":
            assert keys == [KEYS["operator"]]
        else:  # the customer's, and the hand-over key that handover.yml removes (M13)
            assert keys == [KEYS["customer"], KEYS["handover"]]
        # the user data holds a password hash: root alone reads the seed
        assert stat.S_IMODE(seed.stat().st_mode) == 0o700
        assert stat.S_IMODE((seed / "user-data").stat().st_mode) == 0o600
    for name in [*servers, *provider, "mailsink"]:
        user_data = (tmp_path / name / "user-data").read_text()
        assert root_keys(user_data) == [KEYS["operator"]]
        assert "chpasswd" not in user_data


def test_the_command_refuses_an_invalid_fleet_with_its_problems(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "fleet.yml"
    bad.write_text("provider: {}\n")
    keys = []
    for role in ("operator", "handover", "customer"):
        path = tmp_path / f"{role}.pub"
        path.write_text(KEYS[role] + "\n")
        keys += [f"--{role}-key", str(path)]
    (tmp_path / "seed").write_text("s\n")
    status = nocloud.main(["lab-seeds", str(bad), str(tmp_path / "out"), *keys,
                           "--password-seed", str(tmp_path / "seed")])
    assert status == 1
    assert "provider" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
