"""The store under a night's load (issue 15, part 5): one ProFTPD over TLS with the store role's
session limit (`MaxClients N "Too many sessions, try again later"`, proftpd.conf.j2) and N+1 real
agents (the built `vpsfleet-backup`, one process each, each with its own account) publishing at
once. The session the store refuses is a store-side failure: the agent retries it after its
back-off inside the window, and that guest's night ends published, as every other's.

Which agent is refused is left to the race; that one is, is not: a gate in front of lftp (the
agents' `tools.lftp`) holds each upload session, logged in, until N are held and the store has
refused a session, then lets them all go. Nothing waits on a clock but the agents' own back-off.
The store classes here serve benchmarks/store_load.py as well."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest

from tests.backup.conftest import AGENT_PATH, PASSWORD, REPO, Certs, ProftpdStore, need
from tests.metric_samples import samples
from vpsfleet_agents.backup.ftps import classify_lftp_error, store_busy

NOBODY = 65534
LIMIT = 4  # the store's MaxClients in the test: small, the mechanism is the same at 16 or 32
BUSY_MESSAGE = "Too many sessions, try again later"  # the store role's MaxClients message


class LoadedStore(ProftpdStore):
    """The conftest's private ProFTPD (TLS required, `DefaultRoot ~`, HiddenStores, mod_digest),
    with one write account per guest (`c<i>`/`g<i>`, home `srv/c<i>/g<i>`) and the store role's
    session limits: MaxClients `max_clients` with the role's message, MaxClientsPerUser 3,
    MaxInstances twice MaxClients plus 4 (proftpd.conf.j2 with no extra sessions)."""

    def __init__(self, base: Path, cert: Path, key: Path, guests: int, max_clients: int) -> None:
        super().__init__(base, cert, key)
        self.max_clients = max_clients
        self.accounts = [(f"c{i}", f"g{i}") for i in range(1, guests + 1)]
        hashed = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"], input=PASSWORD.encode(),
            capture_output=True, check=True,
        ).stdout.decode().strip()  # fmt: skip
        lines = []
        for _customer, guest in self.accounts:
            home = self.home_of(guest)
            home.mkdir(parents=True, exist_ok=True)
            for folder in (home.parent, home):
                os.chown(folder, NOBODY, NOBODY)
            lines.append(f"{guest}:{hashed}:{NOBODY}:{NOBODY}::{home}:/bin/false\n")
        (self.run_dir / "ftpd.passwd").write_text("".join(lines))
        conf = self.run_dir / "proftpd.conf"
        limits = (
            f"MaxInstances {max_clients * 2 + 4}\n"
            f'MaxClients {max_clients} "{BUSY_MESSAGE}"\n'
            'MaxClientsPerUser 3 "Too many sessions for this account"\n'
        )
        text = conf.read_text()
        assert "MaxInstances 30\n" in text
        conf.write_text(text.replace("MaxInstances 30\n", limits))

    def home_of(self, guest: str) -> Path:
        return self.root / f"c{guest.removeprefix('g')}" / guest

    def refusals(self) -> int:
        """Sessions the server refused at its limit, from its log (`proftpd -n` logs to stderr)."""
        logs = [self.run_dir / name for name in ("stderr.log", "system.log")]
        text = "".join(log.read_text(errors="replace") for log in logs if log.exists())
        return text.count("Connection refused (MaxClients ")

    def dropped(self) -> int:
        """Connections the daemon closed unanswered at MaxInstances (before any session)."""
        logs = [self.run_dir / name for name in ("stderr.log", "system.log")]
        text = "".join(log.read_text(errors="replace") for log in logs if log.exists())
        return text.count("MaxInstances (")

    def pids(self) -> list[int]:
        """The daemon and its session children (for /proc CPU accounting)."""
        if self.proc is None:
            return []
        found = [self.proc.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.proc.pid:
                    found.append(int(entry.name))
        return found


# The gate in front of lftp: a program the agent runs as its lftp. For a session that uploads
# (its script has `put`), it adds `!<gate> hold` after the opener's `cd` (which logs in), so the
# session waits there, logged in, until the gate opens; after any session it records a refusal
# the store answered (lftp's debug log, which the script names).
GATE = """\
#!{python}
import os, re, subprocess, sys, time
from pathlib import Path
from subprocess import PIPE

GATE = Path({gate!r})
LFTP = {lftp!r}
HELD, LIMIT = GATE / "held", {limit}


def hold():
    HELD.mkdir(exist_ok=True)
    (HELD / str(os.getppid())).touch()
    for _ in range(1200):  # 120 s at most: the test then fails on its assertions, not here
        if (GATE / "open").exists():
            return 0
        if len(list(HELD.iterdir())) >= LIMIT and list(GATE.glob("refused.*")):
            (GATE / "open").touch()
            return 0
        time.sleep(0.1)
    (GATE / "timed-out").touch()
    return 0


if sys.argv[1:] == ["hold"]:
    sys.exit(hold())
script = Path(sys.argv[sys.argv.index("-f") + 1])
text = script.read_text()
debug = re.search(r'^debug -o "(.*)" 4$', text, re.M)
if re.search(r"^put ", text, re.M) and not (GATE / "open").exists():
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("cd "))
    lines.insert(at + 1, f"!{{sys.executable}} {{__file__}} hold")
    script.write_text("\\n".join(lines) + "\\n")
code = subprocess.run([LFTP, *sys.argv[1:]]).returncode
log = Path(debug[1]).read_text(errors="replace") if debug and code else ""
if re.search(r"^<--- 530 .*Too many sessions", log, re.M):
    (GATE / f"refused.{{os.getpid()}}").touch()
sys.exit(code)
"""


def write_gate(folder: Path, limit: int) -> Path:
    lftp = shutil.which("lftp")
    assert lftp is not None
    gate = folder / "gate"
    gate.mkdir()
    program = folder / "lftp-gate"
    program.write_text(GATE.format(python=sys.executable, gate=str(gate), lftp=lftp, limit=limit))
    program.chmod(0o755)
    return program


def hhmm(moment: dt.datetime) -> str:
    return moment.strftime("%H:%M")


def small_site(folder: Path, index: int) -> Path:
    """A site of about 1.3 MB: text that compresses, a megabyte that does not."""
    www = folder / "www"
    (www / "shop").mkdir(parents=True)
    (www / "shop" / "index.php").write_text(f"<?php echo 'site {index}'; ?>\n" * 2000)
    (www / "shop" / "photo.jpg").write_bytes(os.urandom(1_000_000))
    return www


def agent_config(
    folder: Path, store: LoadedStore, cert: Path, guest: tuple[str, str], site: Path,
    night_window: tuple[str, str] | None, retry: dict[str, Any], tools: dict[str, str],
) -> Path:  # fmt: skip
    """A guest's config.json as role `backup_agent` writes it, against `store`; `night_window`
    (window_start, deadline) makes the run the night's (with retries), None a run on request."""
    customer, name = guest
    secrets = folder / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "store.password").write_text(PASSWORD + "\n")
    (secrets / "store.password").chmod(0o600)
    state = folder / "state"
    data: dict[str, Any] = {
        "customer": customer,
        "guest": name,
        "paths": [str(site)],
        "databases": "none",
        "store": {
            "host": "localhost",
            "port": store.port,
            "user": name,
            "password_file": str(secrets / "store.password"),
            "ca_file": str(cert),
            "timeout_seconds": 20,
            "retries": 1,
            "reconnect_seconds": 1,
        },
        "deadline": night_window[1] if night_window else None,
        "window_start": night_window[0] if night_window else "00:00",
        "retry": retry,
        "work_dir": str(folder / "work"),
        "status_file": str(state / "status.json"),
        "textfile": str(state / "textfile" / "vpsfleet_backup.prom"),
        "lock_file": str(state / "lock"),
        "restore_dir": str(state / "restore"),
        "replaced_dir": str(state / "replaced"),
        "tools": tools,
    }
    path = folder / "config.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def loaded_store(certs: Certs) -> Iterator[LoadedStore]:
    need("proftpd", "openssl", "lftp", "tar", "zstd", "sha256sum")
    # Not under pytest's 0700 temp folder: the virtual users (nobody) must reach their homes.
    base = Path(tempfile.mkdtemp(prefix="vpsfleet-store-load-", dir="/var/tmp"))
    server = LoadedStore(base, certs.good_cert, certs.good_key, guests=LIMIT + 1, max_clients=LIMIT)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(
    ("stderr", "replies"),
    [
        ("cd: Fatal error: max-retries exceeded (530 Too many sessions, try again later)",
         "530 Too many sessions, try again later"),
        ("cd: Login failed: 530 Too many sessions for this account",
         "530 Too many sessions for this account"),
        ("cd: Login failed: 530 Sorry, the maximum number of clients (4) are already connected.", ""),
        ("cd: Fatal error: max-retries exceeded (421 Too many connections. Service temporarily unavailable.)",
         ""),
    ],
)  # fmt: skip
def test_a_session_refused_at_the_limit_is_a_store_failure(stderr: str, replies: str) -> None:
    """Whatever lftp made of it (its own retries exhausted, or a "Login failed" on a text it does
    not retry), a busy store is the store's failure, which the night retries, never wrong
    credentials."""
    assert store_busy(stderr + "\n" + replies)
    assert classify_lftp_error(stderr, replies) == "store_unreachable"
    assert not store_busy("530 Login incorrect.\n550 file 421 not found")
    wrong = "cd: Login failed: 530 Login incorrect."
    assert classify_lftp_error(wrong, "530 Login incorrect.") == "auth_failed"


@pytest.mark.parametrize("busy_waits", [30, 0], ids=["set-kept-waits", "attempt-fails-retried"])
def test_one_guest_past_the_store_limit_is_refused_then_published_the_same_night(
    tmp_path: Path, loaded_store: LoadedStore, certs: Certs, built: None, busy_waits: int
) -> None:
    """With busy waits (the default), the refused guest keeps its built set and offers it again
    in the same attempt; with none, the attempt fails and the night retries it."""
    template = REPO / "ansible" / "roles" / "backup_store" / "templates" / "proftpd.conf.j2"
    assert f'"{BUSY_MESSAGE}"' in template.read_text()  # the limit the role configures
    assert "extra_sessions | int) * 2 + 4 }}" in template.read_text()  # and LoadedStore's MaxInstances
    store = loaded_store
    now = dt.datetime.now().astimezone()
    # The night's window on the real clock: opened a minute ago, hard stop in five minutes.
    window = (hhmm(now - dt.timedelta(minutes=1)), hhmm(now + dt.timedelta(minutes=5)))
    gate = write_gate(tmp_path, LIMIT)
    retry = {"attempts": 8, "backoff_seconds": 1, "backoff_max_seconds": 2,
             "busy_waits": busy_waits, "busy_wait_seconds": 1}
    guests = []
    for index, account in enumerate(store.accounts, start=1):
        folder = tmp_path / account[1]
        folder.mkdir()
        config = agent_config(
            folder, store, certs.good_cert, account, small_site(folder, index), window, retry,
            {"lftp": str(gate)},
        )  # fmt: skip
        guests.append((account, folder, config))
    # The agents as the role installs them, all at once.
    command = [str(AGENT_PATH), "--config"]
    agents = [subprocess.Popen([*command, str(c)], stdout=PIPE, stderr=PIPE, text=True) for *_, c in guests]
    outputs = [agent.communicate(timeout=240) for agent in agents]
    journals = "\n".join(out + err for out, err in outputs)
    assert not (tmp_path / "gate" / "timed-out").exists(), journals
    assert (tmp_path / "gate" / "open").exists()  # N sessions were held when one was refused
    assert [agent.returncode for agent in agents] == [0] * len(agents), journals
    assert store.refusals() >= 1, journals

    refused, waited = [], []
    for ((_, name), folder, _), (_, err) in zip(guests, outputs, strict=True):
        if "the set is kept and offered again" in err:
            waited.append(name)
            assert "Too many sessions" in err
        night = json.loads((folder / "state" / "status.json").read_text())
        attempts = night["night_attempts"]
        # Every guest's night is a success, its set whole on the store: SHA256SUMS checked there,
        # with the server's own SHA-256 (mod_digest) compared by the agent.
        assert night["state"] == "ok" and night["reason"] == "ok", night
        assert night["retry_stopped"] == "published" and night["next_attempt"] is None
        assert night["server_hash"] is True
        set_name = night["last_success"]["set"]
        home = store.home_of(name)
        assert sorted(p.name for p in home.iterdir()) == [set_name]
        check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=home / set_name,
                               capture_output=True, text=True)  # fmt: skip
        assert check.returncode == 0, check.stdout
        assert not [p for p in home.rglob(".in.*")]  # no HiddenStores leftovers
        values = samples((folder / "state" / "textfile" / "vpsfleet_backup.prom").read_text())
        assert values["vpsfleet_backup_last_run_success"] == 1
        assert values['vpsfleet_backup_last_run_exit_reason{reason="ok"}'] == 1
        assert values["vpsfleet_backup_night_attempts"] == len(attempts)
        assert values["vpsfleet_backup_next_attempt_timestamp_seconds"] == 0
        assert [a["reason"] for a in attempts][-1] == "ok"
        failed = attempts[:-1]
        if failed:
            refused.append(name)
            # The refusal is the store's (retried), never the guest's credentials; every attempt
            # started inside the window, before the hard stop.
            assert {a["reason"] for a in failed} == {"store_unreachable"}, attempts
            assert any("Too many sessions" in a["message"] for a in failed), attempts
            assert values["vpsfleet_backup_last_run_attempt"] == len(attempts)
            deadline = dt.datetime.fromisoformat(night["deadline"])
            assert all(dt.datetime.fromisoformat(a["started"]) < deadline for a in attempts)
    if busy_waits:
        # The refused guest waited for a session with its set built: one attempt, no failure.
        assert waited and not refused, journals
        assert len(waited) < len(guests)
    else:
        assert refused and not waited, "no guest was refused: the store's limit did not bind"
        assert len(refused) < len(guests)
