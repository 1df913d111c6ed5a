"""The patching role refuses a daily upgrade or a reboot window that would meet the backup window
(M18), across midnight included, before it changes anything on a guest."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "ansible" / "roles" / "patching"


def filters() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "patching_time", ROLE / "filter_plugins" / "patching_time.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("start", "length", "window", "overlaps"),
    [
        ("04:00", 90, ("00:00", "03:00"), False),  # the default: 04:00 + 30 min + 60 min
        ("02:30", 30, ("00:00", "03:00"), True),  # inside
        ("03:00", 60, ("00:00", "03:00"), False),  # starts as the window ends
        ("23:30", 60, ("00:00", "03:00"), True),  # runs past midnight into the window
        ("22:30", 90, ("00:00", "03:00"), False),  # ends at midnight exactly
        ("01:00", 30, ("23:00", "02:00"), True),  # a window across midnight
        ("12:00", 30, ("23:00", "02:00"), False),
    ],
)
def test_overlap_with_the_backup_window(
    start: str, length: int, window: tuple[str, str], overlaps: bool
) -> None:
    f = filters()
    minutes = f.patching_minutes
    assert f.patching_overlaps(minutes(start), length, minutes(window[0]), minutes(window[1])) is (overlaps)


def run_assert(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "check.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "name": "Check the patching inputs",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Run the role's checks",
                            "ansible.builtin.include_role": {
                                "name": "patching",
                                "tasks_from": "assert.yml",
                            },
                        }
                    ],
                }
            ]
        ),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROOT / "ansible" / "roles"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_NOCOLOR": "true",
    }
    extra = json.dumps(variables)
    return subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "ansible-playbook"),
            "-c",
            "local",
            "-i",
            "localhost,",
            "-e",
            extra,
            str(playbook),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_role_accepts_the_default_times(tmp_path: Path) -> None:
    done = run_assert(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_role_refuses_an_upgrade_time_inside_the_backup_window(tmp_path: Path) -> None:
    done = run_assert(tmp_path, patching_upgrade_time="02:15")
    assert done.returncode != 0
    assert "meets the backup window 00:00-03:00 (M18)" in " ".join(done.stdout.split())


def test_role_refuses_a_reboot_window_inside_the_backup_window(tmp_path: Path) -> None:
    done = run_assert(tmp_path, patching_maintenance_window="00:30")
    assert done.returncode != 0
    assert "(M18)" in done.stdout


def test_apt_list_reads_apt_config_dump() -> None:
    dump = [
        'Unattended-Upgrade::Origins-Pattern "";',
        'Unattended-Upgrade::Origins-Pattern:: "origin=Debian,codename=${distro_codename}-security";',
        'Unattended-Upgrade::Origins-Pattern:: "origin=vpsfleet,label=apps";',
        'Unattended-Upgrade::Package-Blacklist:: "mariadb";',
    ]
    assert filters().patching_apt_list(dump, "Unattended-Upgrade::Origins-Pattern") == [
        "origin=Debian,codename=${distro_codename}-security",
        "origin=vpsfleet,label=apps",
    ]
