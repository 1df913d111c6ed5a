"""One source for the fleet's variables in the Molecule scenarios.

A scenario runs without a fleet file: its molecule.yml writes by hand the `vpsfleet_*` variables
the inventory plugin would give its instances. This test reads every scenario's inventory
(group_vars and host_vars, as each platform's groups combine them) and checks each of those
variables against what the plugin gives the machine of the same name in
tests/ansible/scenario-fleet.yml, through `ansible-inventory`. So a scenario cannot drift from
the plugin: a key the plugin does not give, a value it would not compute, a list of another
length, all fail here, naming the scenario, host and path.

A scenario may write less than the plugin gives (a role reads a few keys). A value that is
templated (`{{ ... }}`: an address or a key known only at run time) is not compared. What a
scenario deliberately sets otherwise is listed in DELIBERATE, with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible.conftest import REPO, inventory_json

FLEET = Path(__file__).parent / "scenario-fleet.yml"
SCENARIOS = sorted(REPO.glob("ansible/roles/*/molecule/*/molecule.yml")) + sorted(
    REPO.glob("molecule/*/molecule.yml")
)
_MISSING = object()
# Variables of group `all`: every host of an inventory has them, fleet machine or not.
ALL_GROUP = {"vpsfleet_environment", "vpsfleet_provider", "vpsfleet_monitor_addresses",
             "vpsfleet_policy_backup"}  # fmt: skip
# Set by the operator's vault, not by the plugin.
NOT_FROM_PLUGIN = {"vpsfleet_backup_secret"}

# (scenario folder, host, path): why the scenario's value differs from the plugin's.
DELIBERATE: dict[tuple[str, str, str], str] = {
    ("ansible/roles/backup_agent/molecule/default", "backup-role-guest", "vpsfleet_backup.start"):
        "the timer's start time under test; the planner would give the store's only guest 00:00",
    ("ansible/roles/monitor/molecule/default", "monitor-role-monitor", "vpsfleet_policy_audit.time"):
        "the audit timer's time under test: not the policy default, to prove the wiring (M29)",
    ("ansible/roles/monitor/molecule/default", "monitor-role-monitor",
     "vpsfleet_policy_audit.max_rate"):
        "the audit's rate under test: not the policy default, to prove the wiring (M29)",
}  # fmt: skip
# Hosts whose variables are checked for their shape only (keys the plugin gives), with the
# fleet machine of the same kind: a store with terminated and suspended guests, loopback address
# and tiny quotas that no valid fleet file holds.
SHAPE_ONLY = {
    ("ansible/roles/backup_store/molecule/default", "bstore"): "backup-role-store",
}


Hostvars = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def plugin_hostvars(tmp_path_factory: pytest.TempPathFactory) -> Hostvars:
    """`ansible-inventory --list` of the scenarios' fleet: host -> its variables."""
    source = tmp_path_factory.mktemp("scenario-fleet") / "vpsfleet.yml"
    source.write_text(f"plugin: vpsfleet.platform.vpsfleet\nfleet: {FLEET}\n")
    hostvars: Hostvars = inventory_json(source)["_meta"]["hostvars"]
    return hostvars


def scenario_variables(molecule_yml: Path) -> dict[str, dict[str, Any]]:
    """Host -> the vpsfleet_* variables its scenario writes (all, then its groups, then its own)."""
    config = yaml.safe_load(molecule_yml.read_text())
    inventory = (config.get("provisioner") or {}).get("inventory") or {}
    group_vars = inventory.get("group_vars") or {}
    host_vars = inventory.get("host_vars") or {}
    result: dict[str, dict[str, Any]] = {}
    for platform in config.get("platforms") or []:
        merged: dict[str, Any] = dict(group_vars.get("all") or {})
        for group in platform.get("groups") or []:
            merged.update(group_vars.get(group) or {})
        merged.update(host_vars.get(platform["name"]) or {})
        written = {k: v for k, v in merged.items() if k.startswith("vpsfleet_") and k not in NOT_FROM_PLUGIN}
        if written:
            result[platform["name"]] = written
    return result


def _restricted(path: str, items: list[Any], machines: set[str]) -> list[Any]:
    """A monitor's targets, fleet-wide, cut to the machines of the scenario: the plugin would
    list only those if the scenario's fleet held nothing else."""
    if not path.startswith("vpsfleet_monitor_targets."):
        return items
    return [i for i in items if i.get("guest", i.get("name", i.get("host"))) in machines]


def differences(
    written: Any, computed: Any, path: str, *, shape: bool = False, machines: frozenset[str] = frozenset()
) -> list[str]:
    if isinstance(written, str) and "{{" in written:
        return []  # known at run time only
    if isinstance(written, dict):
        if not isinstance(computed, dict):
            return [f"{path}: a mapping in the scenario, {computed!r} from the plugin"]
        found: list[str] = []
        for key, value in written.items():
            if key not in computed:
                found.append(f"{path}.{key}: the plugin gives no such key")
            else:
                found += differences(value, computed[key], f"{path}.{key}", shape=shape, machines=machines)
        return found
    if isinstance(written, list):
        if not isinstance(computed, list):
            return [f"{path}: a list in the scenario, {computed!r} from the plugin"]
        if shape:  # every item against the plugin's first one
            if not computed:
                return []
            return [d for i, item in enumerate(written)
                    for d in differences(item, computed[0], f"{path}[{i}]", shape=True)]  # fmt: skip
        computed = _restricted(path, computed, set(machines))
        if len(written) != len(computed):
            return [f"{path}: {len(written)} items in the scenario, {len(computed)} from the plugin"]
        return [d for i, (w, c) in enumerate(zip(written, computed, strict=True))
                for d in differences(w, c, f"{path}[{i}]", machines=machines)]  # fmt: skip
    if shape or written == computed:
        return []
    return [f"{path}: {written!r} in the scenario, {computed!r} from the plugin"]


def scenario_id(path: Path) -> str:
    return str(path.parent.relative_to(REPO))


@pytest.mark.parametrize("molecule_yml", SCENARIOS, ids=scenario_id)
def test_scenario_variables_are_what_the_plugin_gives(molecule_yml: Path, plugin_hostvars: Hostvars) -> None:
    scenario = scenario_id(molecule_yml)
    computed = plugin_hostvars
    any_fleet_machine = next(iter(computed.values()))
    problems: list[str] = []
    platforms = yaml.safe_load(molecule_yml.read_text()).get("platforms") or []
    machines = frozenset(p["name"] for p in platforms)
    for host, written in scenario_variables(molecule_yml).items():
        machine = SHAPE_ONLY.get((scenario, host), host)
        shape = (scenario, host) in SHAPE_ONLY
        if machine in computed:
            given = computed[machine]
        else:  # a sink, an "other" machine: not in a fleet, it has only the variables of `all`
            given = {k: v for k, v in any_fleet_machine.items() if k in ALL_GROUP}
        for name, value in written.items():
            if name not in given:
                problems.append(f"{host}: {name}: the plugin gives {machine} no such variable")
                continue
            for problem in differences(value, given[name], name, shape=shape, machines=machines):
                path = problem.split(":", 1)[0]
                if (scenario, host, path) not in DELIBERATE:
                    problems.append(f"{host}: {problem}")
    assert not problems, (
        f"{scenario}'s molecule.yml disagrees with the inventory plugin on {FLEET.name}:\n  "
        + "\n  ".join(problems)
    )


def test_every_deliberate_difference_is_still_one(plugin_hostvars: Hostvars) -> None:
    """A DELIBERATE entry whose scenario now agrees with the plugin is removed, not kept."""
    computed = plugin_hostvars
    for (scenario, host, path), _reason in DELIBERATE.items():
        written: Any = scenario_variables(REPO / scenario / "molecule.yml")[host]
        given: Any = computed[host]
        for key in re.findall(r"[^.\[\]]+", path):
            step: Any = int(key) if key.isdigit() else key
            written = written[step]
            given = given[step] if isinstance(given, (dict, list)) and (
                step in given if isinstance(given, dict) else step < len(given)) else _MISSING
        assert written != given, (scenario, host, path)


def test_the_scenarios_fleet_is_valid() -> None:
    from vpsfleet.loader import load_fleet

    fleet = load_fleet(FLEET)
    named = {g.name for g in fleet.guests} | {s.name for s in fleet.backup_stores}
    assert {"common-managed", "backup-role-guest", "backup-role-store"} <= named
