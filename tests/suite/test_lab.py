"""vpsfleet.lab: the Python steps of scripts/lab.sh (the plan, ansible-runner's settings, the
verification's summary), without starting the lab."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import subprocess
from pathlib import Path

import pytest

from vpsfleet import lab
from vpsfleet.environments import fleet_path
from vpsfleet.fleet import Fleet
from vpsfleet.loader import load_fleet
from vpsfleet.schema import GuestState

ROOT = Path(__file__).resolve().parents[2]
SINK = ipaddress.IPv4Address("198.51.100.3")


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(ROOT / "inventories" / "lab" / "fleet.yml")


def test_the_lab_plan_lists_every_live_guest_store_and_monitor(fleet: Fleet) -> None:
    plan = lab.plan(fleet, SINK)
    # the sink's pool first, then in order of first use
    assert [p.name for p in plan.pools] == ["lab-public", "lab-offsite"]
    assert plan.sink_pool == "lab-public"
    assert plan.relay_host == fleet.provider.relay.host
    live = [g for g in fleet.live_guests() if g.ipv4 is not None]
    servers = [s for s in fleet.dedicated_servers if s.ipv4 is not None]
    assert servers, "the lab fleet has a dedicated server"
    assert [m.name for m in plan.guests] == [g.name for g in live] + [s.name for s in servers]
    for machine, server in zip(plan.guests[len(live):], servers, strict=True):
        # the provider's until its delivery (M12), the customer's after
        who = "provider" if server.delivered_on is None else "customer"
        assert (machine.ipv4, machine.who, machine.kind) == (server.ipv4, who, "dedicated")
    for machine, guest in zip(plan.guests[:len(live)], live, strict=True):
        offer = fleet.offer(guest.offer)
        assert offer is not None
        assert (machine.ipv4, machine.who, machine.kind) == (guest.ipv4, offer.root, offer.name)
        pool = fleet.pool_of(machine.ipv4)
        assert pool is not None and machine.pool == pool[1].name
    assert [m.word() for m in plan.stores] == [
        f"{s.name}:{s.address}:lab-offsite:provider:backup-store" for s in fleet.backup_stores
    ]
    assert [m.word() for m in plan.monitors] == [
        f"{m.name}:{m.address}:lab-offsite:provider:monitor" for m in fleet.monitors
    ]
    # what lab.sh reads: managed guests have the provider as root, unmanaged the customer
    assert {m.who for m in plan.guests} == {"provider", "customer"}


def test_the_plan_lists_the_reachable_hypervisors_the_edge_routers_and_their_images(fleet: Fleet) -> None:
    plan = lab.plan(fleet, SINK)
    # labhv1 has no address: it is the machine the lab runs on, not a container
    assert [m.word() for m in plan.hypervisors] == [
        f"{h.name}:{h.ipv4}:lab-public:provider:hypervisor" for h in fleet.hosts if h.ipv4 is not None
    ]
    assert [m.name for m in plan.hypervisors] == ["labhv2"]
    routers = [dc.edge_router for dc in fleet.datacenters if dc.edge_router is not None]
    assert [m.word() for m in plan.edge_routers] == [
        f"{r.name}:{r.address}:lab-public:provider:edge-router" for r in routers
    ]
    assert [m.name for m in plan.edge_routers] == ["labedge1"]
    assert plan.images == ("debian-12",)  # each image once, whatever the number of hosts
    # none of them shares an address with another machine of the lab
    words = plan.guests + plan.stores + plan.monitors + plan.hypervisors + plan.edge_routers
    assert len({m.ipv4 for m in words}) == len(words)


def test_without_reachable_hypervisor_nor_edge_router_the_plan_has_none(fleet: Fleet) -> None:
    hosts = [h.model_copy(update={"ipv4": None}) for h in fleet.hosts]
    datacenters = [dc.model_copy(update={"edge_router": None}) for dc in fleet.datacenters]
    plan = lab.plan(dataclasses.replace(fleet, hosts=hosts, datacenters=datacenters), SINK)
    assert (plan.hypervisors, plan.edge_routers, plan.images) == ((), (), ())
    assert "hypervisors=()\nedge_routers=()\nimages=()\n" in plan.shell()


def test_a_hypervisor_outside_every_pool_is_refused(fleet: Fleet) -> None:
    hosts = [h.model_copy(update={"ipv4": ipaddress.IPv4Address("192.0.2.50")}) if h.ipv4 else h
             for h in fleet.hosts]
    with pytest.raises(lab.LabError, match=r"the hypervisor labhv2 \(192\.0\.2\.50\) is outside"):
        lab.plan(dataclasses.replace(fleet, hosts=hosts), SINK)


def test_a_privileged_container_mounts_sys_read_only_before_systemd(tmp_path: Path) -> None:
    volume = f"{tmp_path}/images:/srv/vpsfleet-lab-images:ro"
    command = lab.container_command(tmp_path, "localhost/img", "lab-labhv2", "labhv2", "lab-public",
                                    "198.51.100.250", privileged=True, volumes=[volume])
    assert "--privileged" in command and "--cap-add" not in command
    assert command[command.index(volume) - 1] == "--volume"
    assert f"{tmp_path}/seeds/labhv2:/var/lib/cloud/seed/nocloud:ro" in command
    assert command[-4:] == ["localhost/img", "/bin/sh", "-c", "mount -o remount,ro /sys && exec /sbin/init"]
    plain = lab.container_command(tmp_path, "localhost/img", "lab-x", "x", "lab-public", "198.51.100.5")
    assert "--privileged" not in plain and plain[-2:] == ["localhost/img", "/sbin/init"]


def test_start_container_passes_privileged_and_volumes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ran: list[list[str]] = []

    def fake_run(args: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        ran.append(args)
        missing = args[1:3] == ["container", "exists"]
        return subprocess.CompletedProcess(args, 1 if missing else 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)  # lab.py's module is this one
    assert lab.main(["start-container", str(tmp_path), "img", "lab-labedge1", "labedge1", "lab-public",
                     "198.51.100.254", "--privileged", "--volume", "/a:/b:ro"]) == 0
    assert ran[-1] == lab.container_command(tmp_path, "img", "lab-labedge1", "labedge1", "lab-public",
                                            "198.51.100.254", True, ["/a:/b:ro"])


def test_the_plan_is_what_bash_sources(fleet: Fleet, tmp_path: Path) -> None:
    plan = lab.plan(fleet, SINK)
    script = tmp_path / "plan.sh"
    script.write_text(plan.shell())
    out = subprocess.run(
        [
            "bash",
            "-c",
            'source "$1"; printf "%s\\n" "${#pools[@]}" "${pools[@]}" "${guests[@]}" "${stores[@]}" '
            '"${monitors[@]}" "${hypervisors[@]}" "${edge_routers[@]}" "${images[@]}" '
            '"$sink_pool" "$relay_host"',
            "plan",
            str(script),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert out == [
        str(len(plan.pools)),
        *(f"{p.name}:{p.network}:{p.gateway}" for p in plan.pools),
        *(m.word() for m in plan.guests + plan.stores + plan.monitors + plan.hypervisors + plan.edge_routers),
        *plan.images,
        plan.sink_pool,
        plan.relay_host,
    ]


def test_terminated_guests_and_machines_without_an_address_are_left_out(fleet: Fleet) -> None:
    first, second, *rest = fleet.guests
    guests = [
        first.model_copy(update={"state": GuestState.TERMINATED, "terminated_on": dt.date(2026, 2, 1)}),
        second.model_copy(update={"ipv4": None}),
        *rest,
    ]
    server = fleet.dedicated_servers[0]
    servers = [server, server.model_copy(update={"name": "no-address", "ipv4": None})]
    plan = lab.plan(dataclasses.replace(fleet, guests=guests, dedicated_servers=servers), SINK)
    assert [m.name for m in plan.guests] == [g.name for g in rest] + [server.name]


def test_the_sink_must_be_a_reserved_address_of_a_pool(fleet: Fleet) -> None:
    with pytest.raises(lab.LabError, match=r"the mail sink 198\.51\.100\.9 must be a reserved address"):
        lab.plan(fleet, ipaddress.IPv4Address("198.51.100.9"))
    with pytest.raises(lab.LabError, match="must be a reserved address"):
        lab.plan(fleet, ipaddress.IPv4Address("192.0.2.3"))  # in no pool at all


def test_a_provider_machine_outside_every_pool_is_refused(fleet: Fleet) -> None:
    store = fleet.backup_stores[0].model_copy(update={"address": ipaddress.IPv4Address("192.0.2.10")})
    with pytest.raises(lab.LabError, match=rf"the backup-store {store.name} \(192\.0\.2\.10\) is outside"):
        lab.plan(dataclasses.replace(fleet, backup_stores=[store]), SINK)


def test_the_plan_command_prints_the_assignments(capsys: pytest.CaptureFixture[str], fleet: Fleet) -> None:
    assert lab.main(["plan", str(SINK), "--env", str(fleet_path("lab"))]) == 0
    assert capsys.readouterr().out == lab.plan(fleet, SINK).shell()
    assert lab.main(["plan", "198.51.100.9", "--env", str(fleet_path("lab"))]) == 1
    assert "must be a reserved address" in capsys.readouterr().err


def test_runner_settings_for_a_playbook() -> None:
    settings = lab.runner_settings(Path("/repo"), Path("/var/lib/vpsfleet-lab"), "lab.yml", "")
    assert settings["playbook"] == "/repo/ansible/playbooks/lab.yml"
    assert settings["private_data_dir"] == "/var/lib/vpsfleet-lab/runner"
    assert settings["inventory"] == [
        "/repo/inventories/lab/vpsfleet.yml",
        "/var/lib/vpsfleet-lab/lab-hosts.yml",
    ]
    assert settings["limit"] is None  # no limit: every host
    assert settings["envvars"]["ANSIBLE_CONFIG"] == "/repo/ansible/ansible.cfg"
    assert settings["envvars"]["ANSIBLE_SSH_CONTROL_PATH_DIR"] == "/var/lib/vpsfleet-lab/ssh/cp"
    limited = lab.runner_settings(Path("/repo"), Path("/lab"), "handover.yml", "bravo-vps,bravo-dev")
    assert limited["limit"] == "bravo-vps,bravo-dev"
    # every file the lab hands to ansible-runner exists in the repository
    real = lab.runner_settings(ROOT, Path("/lab"), "lab.yml", "")
    assert Path(real["inventory"][0]).is_file()
    assert Path(real["envvars"]["ANSIBLE_CONFIG"]).is_file()
    for playbook in ("lab.yml", "handover.yml", "backup-now.yml", "verify-backups.yml"):
        assert (ROOT / "ansible" / "playbooks" / playbook).is_file(), playbook


def test_verify_summary_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = {
        "results": [
            {
                "guest": "alpha-web",
                "set": "2026-12-03",
                "skipped": False,
                "ok": False,
                "checked": [{"file": "www.tar.gz"}, {"file": "db/shop.sql.gz"}],
            },
            {
                "guest": "alpha-app",
                "set": "2026-12-03",
                "skipped": False,
                "ok": True,
                "checked": [{"file": "www.tar.gz"}],
            },
            {"guest": "bravo-vps", "set": None, "skipped": True, "ok": False},
            {
                "guest": "bravo-dev",
                "set": "2026-11-28",
                "skipped": False,
                "ok": True,
                "checked": [{"file": "www.tar.gz"}],
                "nights_without_set": 5,
                "stale": True,
            },
        ]
    }
    expected = [
        "  alpha-web: set 2026-12-03 FAILED (www.tar.gz, db/shop.sql.gz)",
        "  alpha-app: set 2026-12-03 verified (www.tar.gz)",
        "  bravo-vps: set - skipped (no set yet) ()",
        "  bravo-dev: set 2026-11-28 verified (www.tar.gz), STOPPED PUBLISHING, no new set for 5 nights",
    ]
    assert lab.verify_summary(summary) == expected
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    assert lab.main(["verify-summary", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == expected


def test_lab_sh_calls_the_module_and_runs_no_python_heredoc() -> None:
    script = (ROOT / "scripts" / "lab.sh").read_text()
    assert "<<'PY'" not in script and "python - " not in script
    for command in (
        "python -m vpsfleet.lab plan",
        "python -m vpsfleet.lab run-playbook",
        "python -m vpsfleet.lab verify-summary",
        "python -m vpsfleet.lab start-container",
        "python -m vpsfleet.lab_pipeline demo",
    ):
        assert command in script, command
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "lab.sh")], check=True)


def test_the_lab_inventory_gives_the_managed_guests_lab_yml_s_apt_sources() -> None:
    """lab-hosts.yml's patching_apt_sources (lab.sh) are what role lab_apt_repo's client entry
    point gives lab.yml: the same file written by every site.yml of the lab, no change between."""
    import yaml

    defaults = yaml.safe_load((ROOT / "ansible" / "roles" / "lab_apt_repo" / "defaults" / "main.yml")
                              .read_text())
    script = (ROOT / "scripts" / "lab.sh").read_text()
    for archive in defaults["lab_apt_repo_archives"]:
        suite = archive["suite"].replace("{{ lab_apt_repo_codename }}",
                                         defaults["lab_apt_repo_codename"])
        name = f"the lab's {archive['name']} archive ({archive.get('label', 'Debian')})"
        uri = f"http://$sink_ipv4:{defaults['lab_apt_repo_port']}/{archive['name']}"
        assert f'{{name: "{name}", uris: ["{uri}"],' in script, name
        assert f"suites: [{suite}], components: [{archive.get('component', 'main')}], trusted: true}}" \
            in script, suite
