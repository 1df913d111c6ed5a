"""The monitor's alert rules and scrape configuration as role `monitor` renders them, checked
and unit-tested with Debian's promtool (M16: an incident opens a ticket; M26: PING, more than 3
minutes)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "monitor"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed"
)

TARGETS = {
    "node": [
        {"guest": "alpha-web", "customer": "c-alpha", "address": "198.51.100.10"},
        {"guest": "alpha-app", "customer": "c-alpha", "address": "198.51.100.11"},
    ],
    "icmp": [
        {"name": "alpha-web", "kind": "guest", "customer": "c-alpha", "address": "198.51.100.10"},
        {"name": "ds-par1-01", "kind": "server", "customer": "c-0003", "address": "192.0.2.200"},
    ],
    "hosts": [{"host": "hv-a", "datacenter": "par1", "address": "192.0.2.10"}],
}


def role_variables(**overrides: Any) -> dict[str, Any]:
    """The role's defaults resolved as Ansible would for a monitor of the fleet, plus overrides."""
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    raw: dict[str, Any] = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    given: dict[str, Any] = {
        "inventory_hostname": "labmon1",
        "ansible_managed": "Ansible managed",
        "vpsfleet_monitor_targets": TARGETS,
        "vpsfleet_support_email": "support@test.example.net",
        "vpsfleet_provider": {"operations_email": "ops@test.example.net"},
        **overrides,
    }
    resolved = {**raw, **given}
    for _ in range(3):  # defaults refer to other variables; a few passes settle them
        for key, value in raw.items():
            if key in overrides or not isinstance(value, str) or "{{" not in value:
                continue
            text = value.strip()
            if text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1:
                resolved[key] = env.compile_expression(text[2:-2])(**resolved)
            else:
                resolved[key] = env.from_string(value).render(**resolved)
    return resolved


def render(template: str, variables: dict[str, Any], dest: Path) -> Path:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        trim_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["to_json"] = json.dumps
    dest.write_text(env.get_template(template).render(**variables))
    return dest


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """rules.yml rendered with the role's defaults beside the role's rules.test.yml."""
    variables = role_variables(monitor_config_dir=str(tmp_path))
    render("rules.yml.j2", variables, tmp_path / "rules.yml")
    shutil.copy(ROLE / "files" / "rules.test.yml", tmp_path / "rules.test.yml")
    return tmp_path


def test_the_rules_pass_promtool_check(config_dir: Path) -> None:
    result = promtool("check", "rules", "rules.yml", cwd=config_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_unit_tests(config_dir: Path) -> None:
    result = promtool("test", "rules", "rules.test.yml", cwd=config_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_severity_a_summary_and_a_runbook_line(config_dir: Path) -> None:
    rules = yaml.safe_load((config_dir / "rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    names = {a["alert"] for a in alerts}
    # M16: CPU, network interfaces, file systems (space, inodes, read-only), memory; M26: PING.
    assert {"HostDown", "ProbeDown", "CpuBusy", "NetworkInterfaceDown", "NetworkErrors",
            "FilesystemSpaceLow", "FilesystemInodesLow", "FilesystemReadOnly", "MemoryLow",
            "NoProbeData", "MonitorComponentDown"} <= names
    for alert in alerts:
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        assert alert["annotations"]["runbook"].startswith("docs/monitoring.md#"), alert["alert"]
    # Every test in rules.test.yml names an alert that exists.
    tests = yaml.safe_load((config_dir / "rules.test.yml").read_text())
    tested = {case["alertname"] for t in tests["tests"] for case in t["alert_rule_test"]}
    assert tested <= names
    assert names - tested == set(), f"alerts without a unit test: {sorted(names - tested)}"


def test_the_scrape_configuration_passes_promtool_and_labels_the_sla_series(
    config_dir: Path,
) -> None:
    variables = role_variables(monitor_config_dir=str(config_dir))
    path = render("prometheus.yml.j2", variables, config_dir / "prometheus.yml")
    result = promtool("check", "config", "prometheus.yml", cwd=config_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(path.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"prometheus", "alertmanager", "blackbox", "node", "sla_icmp", "hypervisor_node"} <= set(jobs)
    icmp = jobs["sla_icmp"]
    assert icmp["scrape_interval"] == "15s"  # M26: a PING every 15 s
    assert icmp["params"] == {"module": ["icmp"]}
    assert icmp["static_configs"] == [
        {"targets": ["198.51.100.10"], "labels": {"guest": "alpha-web", "customer": "c-alpha"}},
        {"targets": ["192.0.2.200"], "labels": {"server": "ds-par1-01", "customer": "c-0003"}},
    ]
    assert jobs["node"]["static_configs"][0] == {
        "targets": ["198.51.100.10:9100"], "labels": {"guest": "alpha-web", "customer": "c-alpha"},
    }
    # M8: the traffic quota job's figures come from the hypervisors' node exporters.
    assert jobs["hypervisor_node"]["static_configs"] == [
        {"targets": ["192.0.2.10:9100"], "labels": {"host": "hv-a", "datacenter": "par1"}},
    ]


def test_an_empty_fleet_renders_a_valid_configuration(tmp_path: Path) -> None:
    variables = role_variables(
        monitor_config_dir=str(tmp_path), vpsfleet_monitor_targets={"node": [], "icmp": [], "hosts": []}
    )
    render("rules.yml.j2", variables, tmp_path / "rules.yml")
    render("prometheus.yml.j2", variables, tmp_path / "prometheus.yml")
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_retention_covers_a_monthly_report(tmp_path: Path) -> None:
    variables = role_variables()
    assert int(variables["monitor_retention_days"]) >= 40
    args = render("prometheus.default.j2", variables, tmp_path / "prometheus").read_text()
    assert "--storage.tsdb.retention.time=40d" in args
