"""Running a deploy plan's steps in order: Pulumi, then each playbook, then the notices.

A failed step raises StepFailed with what failed and where its output is; nothing after it runs.
Every step is idempotent: `pulumi up` and the playbooks converge, the notices are sent once per
event (vpsfleet/notices/record.py). `apply` and `nightly` (deploy_nightly.py) both end here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpsfleet.deploy_plan import DeployPlan, PlaybookRun
from vpsfleet.fleet import Fleet
from vpsfleet.notices.record import Record, RecordUnreadable
from vpsfleet.notices.relay import Relay, RelaySettings
from vpsfleet.notices.seed import SeedSource
from vpsfleet.notices.sender import NoticeFailed, send_notices

Say = Callable[[str], None]
# ansible-runner writes its whole environment into each run's artifacts (artifacts/ID/command),
# and the CI's secrets arrive as environment variables: those whose name says secret are kept
# from the playbooks (which take keys and secrets from files and the SSH agent, never from env).
# A variable naming a file (ANSIBLE_VAULT_PASSWORD_FILE) holds a path, not the secret: kept.
SECRET_NAME = re.compile(r"PASSWORD|PASSPHRASE|SECRET|TOKEN|SEED|PRIVATE|CREDENTIAL|_KEY$|^KEY",
                         re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None and not name.upper().endswith("_FILE")


class StepFailed(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    """Where each step runs and what it may use (docs/deploy.md)."""

    state_dir: Path
    skip_pulumi: bool
    pulumi_dir: Path
    ansible_dir: Path
    inventories: tuple[Path, ...]
    relay_address: str | None = None
    relay_ca: Path | None = None
    password_seed_file: Path | None = None
    pulumi: str = "pulumi"  # the CLI, found on PATH


# --- Pulumi ------------------------------------------------------------------------------------


def pulumi_step(plan: DeployPlan, settings: Settings, say: Say) -> None:
    if plan.pulumi is None:
        say("1. pulumi: no change of the stack")
        return
    if settings.skip_pulumi:
        say(f"1. pulumi: skipped (--skip-pulumi): stack {plan.pulumi.stack} is not applied")
        return
    cli = shutil.which(settings.pulumi)
    if cli is None:
        raise StepFailed(
            f"pulumi: the Pulumi CLI ({settings.pulumi}) is not installed or not on PATH "
            "(pulumi/README.md); only an environment whose machines are not libvirt guests, "
            "such as the lab, may pass --skip-pulumi")
    command = [cli, "up", "--yes", "--non-interactive", "--skip-preview", "--stack",
               plan.pulumi.stack]
    say(f"1. pulumi: {' '.join(command[1:])} (in {settings.pulumi_dir})")
    # The passphrase (PULUMI_CONFIG_PASSPHRASE[_FILE]) comes from the CI's variables through
    # the environment; the CLI's output goes to the job's log as it comes.
    run = subprocess.run(command, cwd=settings.pulumi_dir, check=False)
    if run.returncode != 0:
        raise StepFailed(f"pulumi up of stack {plan.pulumi.stack} failed (exit "
                         f"{run.returncode}); its output is above")


# --- Ansible -----------------------------------------------------------------------------------


@contextlib.contextmanager
def secrets_withheld() -> Iterator[list[str]]:
    """os.environ without the secret-named variables while a playbook runs (names yielded)."""
    withheld = {name: os.environ.pop(name) for name in list(os.environ)
                if is_secret_name(name)}
    try:
        yield sorted(withheld)
    finally:
        os.environ.update(withheld)


def runner_settings(run: PlaybookRun, settings: Settings) -> dict[str, Any]:
    """ansible-runner's arguments for one playbook: artifacts kept in the state directory."""
    envvars = {
        "ANSIBLE_FORCE_COLOR": "false",
        # The ansible-playbook of this virtualenv, whatever the job's PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    config = settings.ansible_dir / "ansible.cfg"
    if config.is_file():
        envvars["ANSIBLE_CONFIG"] = str(config.resolve())
    return {
        "private_data_dir": str((settings.state_dir / "ansible" / Path(run.playbook).stem)
                                .resolve()),
        "playbook": str((settings.ansible_dir / "playbooks" / run.playbook).resolve()),
        "inventory": [str(p.resolve()) for p in settings.inventories],
        "limit": ",".join(run.limit),
        "envvars": envvars,
        "rotate_artifacts": 20,
        "quiet": False,
    }


def playbook_steps(plan: DeployPlan, settings: Settings, say: Say) -> list[str]:
    """Runs each playbook; returns the artifact folders."""
    import ansible_runner  # only here: plan and the notices need no Ansible

    if not plan.playbooks:
        say("2. ansible: no host to configure")
        return []
    if not settings.inventories:
        raise StepFailed("ansible: no inventory (the environment has no vpsfleet.yml beside its "
                         "fleet file; pass --inventory)")
    kept = []
    for step, run in enumerate(plan.playbooks, start=2):  # numbered as `plan` prints them
        playbook = settings.ansible_dir / "playbooks" / run.playbook
        if not playbook.is_file():
            raise StepFailed(f"ansible: no playbook {playbook}")
        say(f"{step}. ansible: {run.playbook} --limit {','.join(run.limit)} ({run.why})")
        arguments = runner_settings(run, settings)
        Path(arguments["private_data_dir"]).mkdir(parents=True, exist_ok=True)
        with secrets_withheld():
            result = ansible_runner.run(**arguments)
        artifacts = str(result.config.artifact_dir)
        kept.append(artifacts)
        if result.rc != 0 or result.status != "successful":
            raise StepFailed(f"ansible: {run.playbook} failed ({result.status}, exit {result.rc});"
                             f" its output and events are in {artifacts}")
        say(f"   {run.playbook}: {result.status}, artifacts in {artifacts}")
    return kept


# --- notices -----------------------------------------------------------------------------------


def notice_step(plan: DeployPlan, fleet: Fleet, settings: Settings, say: Say) -> None:
    step = 2 + max(len(plan.playbooks), 1)
    if not plan.notices:
        say(f"{step}. customer notices: none")
        return
    say(f"{step}. customer notices ({len(plan.notices)}), through the relay "
        f"{fleet.provider.relay.host}:{fleet.provider.relay.port}, record "
        f"{settings.state_dir / 'notices.json'}")
    relay_settings = RelaySettings(fleet.provider.relay.host, fleet.provider.relay.port,
                                   settings.relay_address, settings.relay_ca)
    try:
        record = Record(settings.state_dir)
        with Relay(relay_settings) as relay:
            outcome = send_notices(plan, fleet, record, relay,
                                   SeedSource(settings.password_seed_file),
                                   lambda line: say(f"   {line}"))
    except (NoticeFailed, RecordUnreadable) as err:
        raise StepFailed(f"notices: {err}") from None
    say(f"   {outcome.sent} sent, {outcome.already} sent already")


def run_steps(plan: DeployPlan, fleet: Fleet, settings: Settings, say: Say) -> None:
    """The plan's steps in order; StepFailed stops it."""
    pulumi_step(plan, settings, say)
    playbook_steps(plan, settings, say)
    notice_step(plan, fleet, settings, say)
