"""The lab and the site scenario reach machines only the way production can (issue 12, M13):
keys come from cloud-init, never put in by hand, and a handed-over machine is reached with its
customer's key alone. These read the scripts and the scenario, which make lab and the site
scenario then run for real."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "molecule" / "site"
# Whatever reaches into a container without the network: what production does not have.
INTO_CONTAINER = re.compile(r"podman\s+(?:exec|cp|mount|run\s+[^\n]*--volumes-from)\b[^\n]*")


def test_the_lab_script_reaches_no_machine_through_podman() -> None:
    # The mail sink is the lab's own stand-in for the relay, not a machine of the fleet.
    found = [m.group(0) for m in INTO_CONTAINER.finditer((ROOT / "scripts" / "lab.sh").read_text())]
    assert all("lab-mailsink" in line for line in found), found


def test_no_key_is_put_into_a_lab_or_scenario_machine_by_hand() -> None:
    for path in [ROOT / "scripts" / "lab.sh", *SITE.rglob("*.yml"), *SITE.rglob("*.sh")]:
        text = path.read_text()
        assert "authorized_keys" not in text, path
        assert "ansible.posix.authorized_key" not in text, path


def test_the_site_scenario_connects_over_ssh_with_the_seeded_keys() -> None:
    for name in ("converge.yml", "prepare.yml"):
        [first, *_] = yaml.safe_load((SITE / name).read_text())
        facts = first["tasks"][0]["ansible.builtin.set_fact"]
        assert facts["ansible_connection"] == "ssh", name
    scenario = yaml.safe_load((SITE / "molecule.yml").read_text())
    assert "dependency" in scenario["scenario"]["test_sequence"]
    for platform in scenario["platforms"]:
        mounts = [v for v in platform["volumes"] if v.endswith(":/var/lib/cloud/seed/nocloud:ro")]
        assert mounts == [f"${{MOLECULE_EPHEMERAL_DIRECTORY}}/seeds/{platform['name']}"
                          ":/var/lib/cloud/seed/nocloud:ro"], platform["name"]


def test_the_site_tests_reach_handed_over_machines_with_the_customers_key_only() -> None:
    text = (SITE / "tests" / "test_site.py").read_text()
    # The one podman:// accessor refuses handed-over machines; the customer's is SSH with its key.
    assert text.count("podman://") == 1
    accessor = text[text.index("def guest_host"):text.index("podman://")]
    assert "if name in HANDED_OVER:" in accessor and "raise AssertionError" in accessor
    assert 'ssh_identity_file=str(KEYS / "customer")' in text
