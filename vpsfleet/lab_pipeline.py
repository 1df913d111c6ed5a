"""The GitOps pipeline in the lab, for `make lab` (issue 13 part 4; M4, M6, M7).

    python -m vpsfleet.lab_pipeline demo FLEET --lab-dir DIR --image IMAGE --sink ADDRESS \
        [--work DIR] [--wait SECONDS]

Run inside the lab's network namespace (scripts/lab.sh's `in_lab`), once the lab is up. In order:
1. a throwaway git repository of the lab's fleet (`WORK/fleet`, the fleet file and its inventory
   source): commit A is the fleet as the lab runs it; commit B is one merge made with the real
   commands: a new managed guest (its access codes, M4) given its address by `vpsfleet ipam
   allocate`, `vpsfleet smtp block` of a guest of a customer of the other language (M6) and
   `vpsfleet suspend` of a third guest (M7);
2. what Pulumi does in production and `apply --skip-pulumi` does not in the lab: the new guest's
   container at its allocated address, booted from the seed the Pulumi program's code renders
   (`vpsfleet_infra.nocloud`, with the lab's keys and password seed, as lab.sh renders the others);
3. `vpsfleet deploy apply WORK/fleet/fleet.yml --from A --to B --skip-pulumi --state-dir
   WORK/state`: site.yml limited to what changed, over SSH, then the notices through the lab's
   relay (the mail sink). The mails are read on the sink over SSH with the provider's key, as an
   operator would, and checked: recipient, language, subject, the facts (address, dates,
   durations); no password nor seed in any log or artifact of the state directory;
4. the same `apply` again: no notice sent (the sink gains none), no host changed;
5. the lab put back as its fleet says, whatever happened: the new container and its seed go, and
   the store and monitor, which the merge's site.yml reconfigured, get the lab fleet's site.yml
   again. The block and the suspension only ever existed in the throwaway repository (they are
   Pulumi's port filters, under its own tests).

Exit 1 when a step does not happen or a check fails (the message says which).
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import email
import email.policy
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

from vpsfleet.fleet import Fleet
from vpsfleet.schema import GuestState, OfferKind

MAILDIR = "/var/mail/sink/new"
NOTICE_HEADER = "X-Vpsfleet-Notice"
RELAY_CERT = "/etc/mail-sink/cert.pem"  # role mail_sink's self-signed certificate
STORE_ROOT = "/srv/vpsfleet-backup"  # role backup_store's backup_store_root, which the lab keeps
FR_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


class DemoFailed(Exception):
    """A step of the demo that did not happen or a check that failed (exit 1)."""


# --- the merge --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """What the merge does: a new managed guest, a block and a suspension, chosen so that both
    languages of the fleet's customers are told something."""

    new_guest: str
    customer: str
    offer: str
    plan: str
    host: str
    image: str
    blocked: str
    suspended: str

    def guest_entry(self, today: dt.date) -> str:
        """The new guest as an engineer writes it in the merge request, without an address:
        `vpsfleet ipam allocate` gives it one."""
        return (
            f"  - name: {self.new_guest}  # the lab's pipeline demo (vpsfleet.lab_pipeline)\n"
            f"    created: {today.isoformat()}\n    customer: {self.customer}\n"
            f"    offer: {self.offer}\n    plan: {self.plan}\n    host: {self.host}\n"
            f"    image: {self.image}\n\n"
        )


def pick(fleet: Fleet, now: dt.datetime) -> Scenario:
    """The new guest: a managed VPS (its access codes carry the initial password, the notice that
    must never leak) for the customer of the fleet's first managed guest, on that guest's host,
    image and the smallest plan. The block and the suspension: two active guests whose root is the
    customer (site.yml does not configure them: the change is Pulumi's port filter alone), of
    customers of another language than the new guest's when there are some."""
    from vpsfleet.filters import smtp_block_active

    managed = [
        g
        for g in fleet.live_guests()
        if (o := fleet.offer(g.offer)) is not None and o.kind is OfferKind.MANAGED_VPS
    ]
    if not managed:
        raise DemoFailed("the fleet has no managed guest to model the new one on")
    model = managed[0]
    offer = next(o for o in fleet.offers if o.name == model.offer)
    customer = fleet.customer(model.customer)
    if customer is None:
        raise DemoFailed(f"the guest {model.name} has an unknown customer")
    plan = min(fleet.plans, key=lambda p: (p.vcpu, p.ram_mb, p.disk_gb))
    name = f"{customer.id.removeprefix('c-')}-shop"
    if fleet.guest(name) is not None:
        raise DemoFailed(f"the fleet already has a guest {name}")

    def language(guest_customer: str) -> str:
        found = fleet.customer(guest_customer)
        return found.language if found is not None else ""

    candidates = [
        g
        for g in fleet.live_guests()
        if g.state is GuestState.ACTIVE
        and g.ipv4 is not None
        and (o := fleet.offer(g.offer)) is not None
        and o.root == "customer"
        and not any(smtp_block_active(b, now) for b in g.smtp_blocks)
    ]
    candidates.sort(key=lambda g: language(g.customer) == customer.language)  # others first
    if len(candidates) < 2:
        raise DemoFailed("the fleet needs two active guests whose root is the customer")
    return Scenario(
        new_guest=name,
        customer=customer.id,
        offer=offer.name,
        plan=plan.name,
        host=model.host,
        image=model.image,
        blocked=candidates[0].name,
        suspended=candidates[1].name,
    )


def insert_guest(text: str, entry: str) -> str:
    """The new guest's entry, last of `guests:` (just before `backup_stores:`)."""
    marker = "\nbackup_stores:\n"
    where = text.find(marker)
    if where < 0:
        raise DemoFailed("the fleet file has no `backup_stores:` section to insert a guest before")
    return text[:where].rstrip("\n") + "\n" + entry.rstrip("\n") + "\n" + text[where:]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=vpsfleet lab",
            "-c",
            "user.email=ops@lab.invalid",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DemoFailed(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def vpsfleet(*args: str) -> str:
    """The real command line, as an engineer runs it in the merge request."""
    done = subprocess.run(
        [sys.executable, "-m", "vpsfleet.cli", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DemoFailed(f"vpsfleet {' '.join(args)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout.strip()


@dataclass(frozen=True)
class Merge:
    repo: Path
    rev_a: str
    rev_b: str
    address: str  # the new guest's, from ipam allocate
    said: tuple[str, ...]  # what the commands printed


def make_merge(fleet_file: Path, inventory: Path, repo: Path, scenario: Scenario, now: dt.datetime) -> Merge:
    """The throwaway repository: A, the lab's fleet; B, the merge made with the commands."""
    repo.mkdir(parents=True)
    shutil.copyfile(fleet_file, repo / "fleet.yml")
    shutil.copyfile(inventory, repo / "vpsfleet.yml")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "fleet.yml", "vpsfleet.yml")
    git(repo, "commit", "-q", "-m", "A: the lab's fleet as it runs")
    rev_a = git(repo, "rev-parse", "HEAD")
    path = repo / "fleet.yml"
    path.write_text(
        insert_guest(path.read_text(encoding="utf-8"), scenario.guest_entry(now.date())), encoding="utf-8"
    )
    stamp = now.isoformat()
    said = (
        vpsfleet("ipam", "allocate", str(path), scenario.new_guest, "--today", now.date().isoformat()),
        vpsfleet(
            "smtp",
            "block",
            str(path),
            scenario.blocked,
            "--reason",
            "spam reported by a mailbox provider (lab demo)",
            "--now",
            stamp,
        ),
        vpsfleet(
            "suspend", str(path), scenario.suspended, "--reason", "lab demo: invoice unpaid", "--now", stamp
        ),
    )
    git(
        repo,
        "commit",
        "-q",
        "-am",
        f"B: {scenario.new_guest} ordered, {scenario.blocked} port 25 blocked, "
        f"{scenario.suspended} suspended",
    )
    from vpsfleet.loader import load_fleet

    guest = load_fleet(path, today=now.date()).guest(scenario.new_guest)
    if guest is None or guest.ipv4 is None:
        raise DemoFailed(f"ipam allocate gave {scenario.new_guest} no address")
    return Merge(repo, rev_a, git(repo, "rev-parse", "HEAD"), str(guest.ipv4), said)


# --- the mails --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """A notice the merge calls for, and what its mail must say."""

    kind: str
    machine: str
    recipient: str
    language: str
    facts: tuple[str, ...]  # each must appear in the plain-text part
    secret: str | None = None  # the customer's copy holds it, operations' copy must not


def day_text(day: dt.date, language: str) -> str:
    month = FR_MONTHS[day.month - 1] if language == "fr" else calendar.month_name[day.month]
    return f"{day.day} {month} {day.year}"


def moment_text(moment: dt.datetime, language: str) -> str:
    moment = moment.astimezone(dt.UTC)
    joint = " à " if language == "fr" else ", "
    return f"{day_text(moment.date(), language)}{joint}{moment:%H:%M} UTC"


def expected_notices(before: Fleet, after: Fleet, scenario: Scenario, password: str) -> list[Expected]:
    """From the fleet of B: the access codes of the new guest (its address, its password), the
    block (its start, its duration, its end) and the network cut (its day)."""

    def customer_of(name: str) -> tuple[str, str]:
        guest = after.guest(name)
        customer = after.customer(guest.customer) if guest is not None else None
        if customer is None:
            raise DemoFailed(f"{name}: no customer")
        return customer.email, customer.language

    new = after.guest(scenario.new_guest)
    blocked = after.guest(scenario.blocked)
    suspended = after.guest(scenario.suspended)
    if new is None or blocked is None or suspended is None or not blocked.smtp_blocks:
        raise DemoFailed("the merge is not in the fleet of B")
    email_new, lang_new = customer_of(new.name)
    email_blocked, lang_blocked = customer_of(blocked.name)
    email_suspended, lang_suspended = customer_of(suspended.name)
    block = blocked.smtp_blocks[-1]
    hours = "?" if block.until is None else str(int((block.until - block.blocked_at).total_seconds() // 3600))
    unit = "heures" if lang_blocked == "fr" else "hours"
    block_facts = [str(blocked.ipv4), moment_text(block.blocked_at, lang_blocked), f"{hours} {unit}"]
    if block.until is not None:
        block_facts.append(moment_text(block.until, lang_blocked))
    cut_day = suspended.suspended_on
    del before  # the facts are the fleet's of B; A only had none of them
    return [
        Expected("access_codes", new.name, email_new, lang_new, (str(new.ipv4),), password),
        Expected("smtp_block", blocked.name, email_blocked, lang_blocked, tuple(block_facts)),
        Expected(
            "network_cut",
            suspended.name,
            email_suspended,
            lang_suspended,
            (str(suspended.ipv4), *((day_text(cut_day, lang_suspended),) if cut_day else ())),
        ),
    ]


def is_deploy_notice(message: EmailMessage) -> bool:
    """A notice of `vpsfleet deploy` (vpsfleet/notices), not one the guests send themselves (the
    managed guests' reboot notices, M14) nor a monitor's ticket."""
    from vpsfleet.deploy_plan import NOTICE

    return str(message.get(NOTICE_HEADER, "")) in set(NOTICE.values())


def flat(text: str) -> str:
    """Whitespace (line breaks of the reflowed text, non-breaking spaces) as single spaces."""
    return " ".join(text.replace("\u00a0", " ").split())


def parse_mail(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(message, EmailMessage):  # pragma: no cover - the default policy's class
        raise DemoFailed("a mail the email package cannot read")
    return message


def plain_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    if not isinstance(part, EmailMessage):
        return ""
    return str(part.get_content())


@dataclass(frozen=True)
class Checked:
    kind: str
    machine: str
    recipient: str
    language: str
    subject: str
    copy: str  # how operations got theirs: Cc, or a separate copy without the password


def check_mails(
    mails: Sequence[EmailMessage],
    expected: Sequence[Expected],
    operations: str,
    record: Sequence[Mapping[str, Any]],
) -> list[Checked]:
    """Each expected notice is in `mails` once, to its customer, in their language, with the
    record's subject and the facts; operations have their copy; nothing else was sent."""
    problems: list[str] = []
    checked: list[Checked] = []
    notices = [m for m in mails if is_deploy_notice(m)]
    subjects = {(str(e.get("kind")), str(e.get("machine"))): str(e.get("subject")) for e in record}
    used: set[int] = set()
    for want in expected:
        what = f"{want.kind} for {want.machine}"
        body_has = f"({want.machine})"

        def matches(m: EmailMessage, want: Expected = want, body_has: str = body_has) -> bool:
            return m.get(NOTICE_HEADER) == want.kind and (
                want.machine in str(m.get("Subject", "")) or body_has in flat(plain_text(m))
            )

        mine = [(i, m) for i, m in enumerate(notices) if matches(m)]
        to_customer = [(i, m) for i, m in mine if want.recipient in str(m.get("To", ""))]
        if len(to_customer) != 1:
            problems.append(f"{what}: {len(to_customer)} mails to {want.recipient}, not 1")
            continue
        index, mail = to_customer[0]
        used.add(index)
        text = flat(plain_text(mail))
        language = str(mail.get("Content-Language", ""))
        if language != want.language:
            problems.append(f"{what}: in {language or '?'}, the customer reads {want.language}")
        subject = str(mail.get("Subject", ""))
        if subjects.get((want.kind, want.machine)) != subject:
            problems.append(
                f"{what}: subject {subject!r} is not the record's {subjects.get((want.kind, want.machine))!r}"
            )
        missing = [fact for fact in want.facts if flat(fact) not in text]
        if missing:
            problems.append(f"{what}: the mail does not say {', '.join(missing)}")
        if want.secret is None:
            copy = "Cc"
            if operations not in str(mail.get("Cc", "")):
                problems.append(f"{what}: operations ({operations}) not in Cc")
        else:
            copy = "a copy without the password"
            if want.secret not in text:
                problems.append(f"{what}: the customer's mail lacks the initial password")
            theirs = [(i, m) for i, m in mine if operations in str(m.get("To", ""))]
            if len(theirs) != 1:
                problems.append(f"{what}: {len(theirs)} copies to operations, not 1")
            else:
                used.add(theirs[0][0])
                if want.secret in plain_text(theirs[0][1]) or want.secret in str(theirs[0][1]):
                    problems.append(f"{what}: operations' copy shows the password")
            if operations in str(mail.get("Cc", "")):
                problems.append(f"{what}: operations in Cc of the mail with the password")
        checked.append(Checked(want.kind, want.machine, want.recipient, language, subject, copy))
    extra = [f"{m.get(NOTICE_HEADER)} to {m.get('To')}" for i, m in enumerate(notices) if i not in used]
    if extra:
        problems.append(f"notices nobody expected: {'; '.join(extra)}")
    if problems:
        raise DemoFailed("the notices in the sink: " + "; ".join(problems))
    return checked


# --- what a run did ---------------------------------------------------------------------------

SENT = re.compile(r"^\s*(\d+) sent, (\d+) sent already\s*$", re.MULTILINE)


def notices_sent(output: str) -> tuple[int, int]:
    """(sent, already) from `apply`'s notice step; (0, 0) when it sent none."""
    found = SENT.findall(output)
    if not found:
        return 0, 0
    sent, already = found[-1]
    return int(sent), int(already)


def changed_hosts(state: Path, since: float) -> dict[str, int]:
    """Per host, the tasks that changed in the playbook runs of `apply` (ansible-runner's
    artifacts in the state directory) started at or after `since` (an mtime)."""
    changed: dict[str, int] = {}
    runs = [d for d in state.glob("ansible/*/artifacts/*") if d.is_dir() and d.stat().st_mtime >= since]
    for run in runs:
        for path in (run / "job_events").glob("*.json"):
            try:
                event = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if event.get("event") != "playbook_on_stats":
                continue
            for host, count in (event.get("event_data", {}).get("changed") or {}).items():
                changed[host] = changed.get(host, 0) + int(count)
    return changed


def judge_second_apply(
    sent: int, already: int, in_sink: int, changed: Mapping[str, int], expected: int
) -> None:
    """The same apply again: every notice found in the record, none sent (the sink gains none),
    no task changed on any host."""
    if sent or in_sink or already != expected:
        raise DemoFailed(
            f"the second apply sent {sent} notices ({in_sink} in the sink, {already} "
            f"of {expected} sent already): it must send none"
        )
    busy = {host: n for host, n in changed.items() if n}
    if busy:
        hosts = ", ".join(f"{h} ({n})" for h, n in sorted(busy.items()))
        raise DemoFailed(f"the second apply changed {hosts}: it must change nothing")


def files_holding(folder: Path, secrets: Iterable[str]) -> list[str]:
    """Every file under `folder` that holds one of `secrets` (their names, never the secret)."""
    wanted = [s.encode() for s in secrets if s]
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        if any(s in data for s in wanted):
            found.append(str(path.relative_to(folder)))
    return found


# --- the lab ----------------------------------------------------------------------------------


class Sink(Protocol):
    def names(self) -> set[str]: ...

    def read(self, name: str) -> bytes: ...


@dataclass
class SshSink:
    """The mail sink's Maildir, read over SSH with the provider's key (never by entering its container)."""

    address: str
    key: Path
    known_hosts: Path

    def ssh(self, command: str, binary: bool = False, timeout: float = 60) -> bytes:
        argv = [
            "ssh",
            "-i",
            str(self.key),
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "ConnectTimeout=10",
            f"root@{self.address}",
            command,
        ]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as err:
            raise DemoFailed(f"ssh {self.address} {command}: no answer in {timeout:g} s") from err
        if done.returncode != 0:
            raise DemoFailed(
                f"ssh {self.address} {command}: "
                f"{done.stderr.decode(errors='replace').strip() or done.returncode}"
            )
        return done.stdout

    def names(self) -> set[str]:
        return set(self.ssh(f"ls -1 {MAILDIR}").decode().split())

    def read(self, name: str) -> bytes:
        return self.ssh(f"cat {shlex.quote(MAILDIR + '/' + name)}")


def new_mails(sink: Sink, before: set[str]) -> list[EmailMessage]:
    return [parse_mail(sink.read(name)) for name in sorted(sink.names() - before)]


@dataclass
class Paths:
    root: Path
    lab_dir: Path
    work: Path
    image: str
    sink: str

    @property
    def key(self) -> Path:
        return self.lab_dir / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.lab_dir / "ssh" / "known_hosts"

    @property
    def state(self) -> Path:
        return self.work / "state"

    @property
    def repo(self) -> Path:
        return self.work / "fleet"

    @property
    def control(self) -> Path:
        return self.work / "cp"  # the apply's SSH masters, closed at the end


def render_seed(paths: Paths, fleet_file: Path, name: str) -> Path:
    """The new guest's seed, from the Pulumi program's own code (vpsfleet_infra.nocloud) with the
    lab's keys and password seed, into the lab's seeds folder (what lab.sh does for the others)."""
    out = paths.work / "seeds"
    ssh = paths.lab_dir / "ssh"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vpsfleet_infra.nocloud",
            "lab-seeds",
            str(fleet_file),
            str(out),
            "--operator-key",
            str(ssh / "id_ed25519.pub"),
            "--handover-key",
            str(ssh / "handover.pub"),
            "--customer-key",
            str(ssh / "customer.pub"),
            "--password-seed",
            str(paths.lab_dir / "password-seed"),
        ],
        env={**os.environ, "PYTHONPATH": str(paths.root / "pulumi")},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DemoFailed(f"the seed of {name}: {done.stderr.strip()}")
    seed = paths.lab_dir / "seeds" / name
    shutil.rmtree(seed, ignore_errors=True)
    shutil.move(str(out / name), seed)
    shutil.rmtree(out)
    return seed


def forget_host_key(paths: Paths, address: str) -> None:
    """A container at that address is new: its host key too (the lab accepts a new one only)."""
    if paths.known_hosts.exists():
        subprocess.run(
            ["ssh-keygen", "-R", address, "-f", str(paths.known_hosts)], capture_output=True, check=False
        )


def wait_booted(paths: Paths, address: str, seconds: float) -> None:
    """SSH with the provider's key answers and cloud-init finished its first boot: what the
    domain's boot gives Ansible after `pulumi up` in production."""
    deadline = time.monotonic() + seconds
    while True:
        done = subprocess.run(
            [
                "ssh",
                "-i",
                str(paths.key),
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                f"UserKnownHostsFile={paths.known_hosts}",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "ConnectTimeout=5",
                f"root@{address}",
                "cloud-init status --wait >/dev/null",
            ],
            capture_output=True,
            text=True,
            timeout=max(seconds, 30),
            check=False,
        )
        if done.returncode == 0:
            return
        if time.monotonic() >= deadline:
            raise DemoFailed(
                f"{address}: no SSH with the provider's key after {seconds:.0f} s ({done.stderr.strip()})"
            )
        time.sleep(3)


def apply_command(paths: Paths, merge: Merge, relay_ca: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vpsfleet.cli",
        "deploy",
        "apply",
        str(merge.repo / "fleet.yml"),
        "--from",
        merge.rev_a,
        "--to",
        merge.rev_b,
        "--skip-pulumi",
        "--state-dir",
        str(paths.state),
        "--inventory",
        str(merge.repo / "vpsfleet.yml"),
        "--inventory",
        str(paths.lab_dir / "lab-hosts.yml"),
        "--relay-address",
        paths.sink,
        "--relay-ca",
        str(relay_ca),
        "--password-seed-file",
        str(paths.lab_dir / "password-seed"),
    ]


def run_apply(paths: Paths, command: Sequence[str], log: Path) -> str:
    """One `apply`, its output kept in the state directory (it is an artifact too)."""
    env = {**os.environ, "VPSFLEET_ROOT": str(paths.root), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(paths.control)}
    env.pop("VPSFLEET_PASSWORD_SEED", None)  # the seed comes from the lab's file only
    done = subprocess.run(list(command), cwd=paths.root, env=env, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    log.write_text(output, encoding="utf-8")
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-15:])
        raise DemoFailed(f"deploy apply exited {done.returncode} (whole output: {log}):\n{tail}")
    return output


def step_lines(output: str) -> list[str]:
    """apply's own lines (its plan and steps), without Ansible's stream between them."""
    keep = re.compile(r"^(\d+\. |   \S|notice |deploy done|nothing to do|[a-z]\S* .*changes?:)")
    return [
        line for line in output.splitlines() if keep.match(line) and not line.startswith(("PLAY", "TASK"))
    ]


# --- the demo ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: Scenario
    address: str = ""
    checked: list[Checked] = field(default_factory=list)
    changed_first: dict[str, int] = field(default_factory=dict)
    changed_second: dict[str, int] = field(default_factory=dict)
    second_mails: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def demo(fleet_file: Path, paths: Paths, wait: float, say: Callable[[str], None]) -> Outcome:
    from vpsfleet import lab
    from vpsfleet.access_codes import initial_password
    from vpsfleet.loader import load_fleet

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    fleet = load_fleet(fleet_file, today=now.date())
    scenario = pick(fleet, now)
    outcome = Outcome(scenario)
    clock = time.monotonic()

    def lap(what: str) -> None:
        nonlocal clock
        outcome.timings[what] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    shutil.rmtree(paths.work, ignore_errors=True)
    paths.state.mkdir(parents=True)
    paths.control.mkdir(parents=True)
    merge = make_merge(fleet_file, fleet_file.parent / "vpsfleet.yml", paths.repo, scenario, now)
    outcome.address = merge.address
    after = load_fleet(merge.repo / "fleet.yml", today=now.date())
    say(f"  merge {merge.rev_a[:8]}..{merge.rev_b[:8]} in {merge.repo}:")
    for line in merge.said:
        say(f"    {line}")
    lap("merge")

    container = f"lab-{scenario.new_guest}"
    plan = lab.plan(after, ipaddress.IPv4Address(paths.sink))
    machine = next(m for m in plan.guests if m.name == scenario.new_guest)
    applied = False

    def back() -> None:
        stores = [str(store.address) for store in fleet.backup_stores]
        put_back(paths, container, scenario.new_guest, merge.address, applied, say, scenario.customer, stores)

    try:
        seed = render_seed(paths, merge.repo / "fleet.yml", scenario.new_guest)
        forget_host_key(paths, merge.address)
        lab.start_container(
            paths.lab_dir, paths.image, container, scenario.new_guest, machine.pool, merge.address
        )
        say(
            f"  pulumi's part, by the lab: {container} at {merge.address}, booted from {seed} "
            "(the program's seed)"
        )
        wait_booted(paths, merge.address, wait)
        # What the lab does to every managed guest's image (lab.yml): the lab has no way out, so
        # Debian's mirrors go and the lab's archives come (role lab_apt_repo, entry point client).
        if lab.run_playbook(
            paths.root,
            paths.lab_dir,
            "lab.yml",
            scenario.new_guest,
            quiet=True,
            fleet_inventory=merge.repo / "vpsfleet.yml",
            tags="lab_apt_repo",
        ):
            raise DemoFailed(
                f"lab.yml's apt sources on {scenario.new_guest} failed "
                f"(artifacts in {paths.lab_dir / 'runner'})"
            )
        say(f"  the lab's apt archives on {scenario.new_guest} (lab.yml, as for every managed guest)")
        lap("container")

        sink = SshSink(paths.sink, paths.key, paths.known_hosts)
        relay_ca = paths.work / "relay-ca.pem"
        relay_ca.write_bytes(sink.ssh(f"cat {RELAY_CERT}"))
        command = apply_command(paths, merge, relay_ca)
        say(f"  {' '.join(shlex.quote(c) for c in ['vpsfleet', *command[3:]])}")
        before = sink.names()
        started = time.time()
        applied = True
        output = run_apply(paths, command, paths.state / "apply-1.log")
        for line in step_lines(output):
            say(f"    {line}")
        lap("apply 1")
        sent, _already = notices_sent(output)
        outcome.changed_first = changed_hosts(paths.state, started - 1)
        mails = new_mails(sink, before)
        seed_text = (paths.lab_dir / "password-seed").read_text(encoding="utf-8").strip()
        password = initial_password(seed_text, after.environment, scenario.new_guest)
        record = json.loads((paths.state / "notices.json").read_text(encoding="utf-8"))
        entries = list(record["sent"].values())
        expected = expected_notices(fleet, after, scenario, password)
        if sent != len(expected):
            raise DemoFailed(f"apply sent {sent} notices, the merge calls for {len(expected)}")
        outcome.checked = check_mails(mails, expected, after.provider.operations_email, entries)

        before = sink.names()
        started = time.time()
        output = run_apply(paths, command, paths.state / "apply-2.log")
        lap("apply 2")
        sent, already = notices_sent(output)
        outcome.changed_second = changed_hosts(paths.state, started - 1)
        second = new_mails(sink, before)
        notices = [m for m in second if is_deploy_notice(m)]
        outcome.second_mails = len(notices)
        judge_second_apply(sent, already, len(notices), outcome.changed_second, len(expected))
        leaked = files_holding(paths.state, [seed_text, password])
        if leaked:
            raise DemoFailed(f"the password or the seed is in {', '.join(leaked)} of {paths.state}")
    except BaseException:
        try:  # the lab put back all the same; the first failure is the one reported
            back()
        except DemoFailed as err:
            say(f"  put back: {err}")
        raise
    back()
    lap("put back")
    return outcome


def put_back(
    paths: Paths,
    container: str,
    name: str,
    address: str,
    applied: bool,
    say: Callable[[str], None],
    customer: str = "",
    stores: Sequence[str] = (),
) -> None:
    """The lab as its fleet says. After an apply, first the machines that the merge's site.yml
    reconfigured (the store's accounts, the monitor's targets) get the lab fleet's site.yml, the
    new guest's tree on the store gone (a later guest of that name, another identity, would be
    refused an account by the store: role backup_store's identity markers): the
    monitor stops PINGing the new guest before it goes, so no outage is ticketed. Then, always,
    the new guest's container and seed go, and its host key and the apply's SSH masters."""
    from vpsfleet import lab

    code = 0
    try:
        if applied:
            for store in stores:  # the new guest's tree and identity marker (role backup_store)
                tree = f"{STORE_ROOT}/{customer}"
                SshSink(store, paths.key, paths.known_hosts).ssh(
                    f"rm -rf -- {tree}/{name} {tree}/.vpsfleet/guests/{name}"
                )
            code = lab.run_playbook(
                paths.root, paths.lab_dir, "site.yml", "backup_stores:monitors", quiet=True
            )
            say(
                f"  put back: site.yml of the lab's fleet on the stores and monitors "
                f"({'done' if code == 0 else 'FAILED'})"
            )
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", container], capture_output=True, check=False)
        shutil.rmtree(paths.lab_dir / "seeds" / name, ignore_errors=True)
        forget_host_key(paths, address)
        for socket in paths.control.glob("*") if paths.control.is_dir() else ():
            subprocess.run(["ssh", "-S", str(socket), "-O", "exit", "x"], capture_output=True, check=False)
        say(f"  put back: {container} removed, its seed and host key forgotten")
    if code != 0:
        raise DemoFailed(
            "site.yml of the lab's fleet on the stores and monitors failed "
            f"(artifacts in {paths.lab_dir / 'runner'})"
        )


def summary(outcome: Outcome) -> list[str]:
    s = outcome.scenario
    lines = [
        f"  the merge: {s.new_guest} ({s.offer}, {s.customer}) at {outcome.address}; "
        f"{s.blocked}: port 25 blocked; {s.suspended}: suspended",
        f"  first apply: site.yml changed "
        f"{', '.join(f'{h} ({n})' for h, n in sorted(outcome.changed_first.items()) if n)}"
        f"; {len(outcome.checked)} notices:",
    ]
    for c in outcome.checked:
        lines.append(
            f"    {c.kind:<13} {c.machine:<11} to {c.recipient} [{c.language}] "
            f'"{c.subject}" (operations: {c.copy})'
        )
    changed = sum(outcome.changed_second.values())
    lines.append(f"  second apply: {outcome.second_mails} notices, {changed} changed")
    lines.append("  timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in outcome.timings.items()))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpsfleet.lab_pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="a merge applied to the lab: a new guest, notices, re-run")
    p.add_argument("fleet", type=Path, help="the lab's fleet file")
    p.add_argument("--lab-dir", required=True, type=Path, help="the lab's state folder")
    p.add_argument("--image", required=True, help="the lab's container image")
    p.add_argument("--sink", required=True, metavar="ADDRESS", help="the mail sink's address")
    p.add_argument(
        "--work",
        type=Path,
        default=None,
        help="the throwaway repository and the state directory (default: "
        "LAB_DIR/pipeline, replaced at each run)",
    )
    p.add_argument("--wait", type=float, default=240.0, help="seconds allowed for the boot")
    args = parser.parse_args(argv)
    root = Path(os.environ.get("VPSFLEET_ROOT") or Path(__file__).resolve().parent.parent)
    paths = Paths(root, args.lab_dir, args.work or args.lab_dir / "pipeline", args.image, args.sink)
    from vpsfleet.loader import FleetInvalid

    try:
        outcome = demo(args.fleet.resolve(), paths, args.wait, lambda line: print(line, flush=True))
    except (FleetInvalid, DemoFailed) as err:
        print(f"lab pipeline demo: {err}", file=sys.stderr)
        return 1
    for line in summary(outcome):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
