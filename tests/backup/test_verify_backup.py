"""The verifier that verify-backups.yml runs (vpsfleet-verify-backup, built from vpsfleet_agents.verify):
with the customer's read-only account, the newest set passes when it is whole and fails, with the
reason, when a byte is flipped or a dump is cut short; dumps load into a scratch MariaDB that is
gone afterwards; the metric keeps the last success.

A set is hostile input (issue 10, #1): a dump that carries a client command (`\\!`, `system`, a
DELIMITER trick, a command after a statement, a SQL mode spelt to hide it) is refused before
anything loads by the agent's screen (the verifier has no screen of its own), and even without
that screen the sandbox (`mariadb --sandbox --binary-mode`, an unprivileged account, no file
import or export) runs nothing; the marker the commands would write stays absent."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backup.conftest import (
    NIGHT,
    PASSWORD,
    VERIFIER_PATH,
    Certs,
    FtpStore,
    MariaDB,
    make_config,
    need,
    unpack,
)
from tests.metric_samples import samples
from vpsfleet_agents.backup.restore import decompressor
from vpsfleet_agents.backup.run import run
from vpsfleet_agents.verify import check
from vpsfleet_agents.verify import cli as verify_cli
from vpsfleet_agents.verify import sandbox as sandbox_module
from vpsfleet_agents.verify import scratch_mariadb as scratch_module
from vpsfleet_agents.verify.check import agent_config, load_dump, screen_dump
from vpsfleet_agents.verify.sandbox import Sandbox, check_private
from vpsfleet_agents.verify.scratch_mariadb import scratch_mariadb

SET = NIGHT.date().isoformat()
# The sandbox's account in the tests; verify-backups.yml makes its own, vpsfleet-verify.
RUN_AS = "nobody"


@pytest.fixture(autouse=True)
def _tools(built: None) -> None:
    need("lftp", "tar", "pigz", "zstd", "sha256sum", "mariadbd", "mariadb-install-db", "setpriv")


@pytest.fixture
def outside() -> Iterator[Path]:
    """Under /var/tmp, reachable by the sandbox's account (pytest's own temp folder is root's
    0700): `scratch` for the scratch databases, `markers` (world-writable, so that a command that
    ran as the sandbox's account would leave its marker there)."""
    base = Path(tempfile.mkdtemp(prefix="vpsfleet-verify-test-", dir="/var/tmp"))
    base.chmod(0o755)
    markers = base / "markers"
    markers.mkdir()
    markers.chmod(0o1777)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def verify(
    tmp_path: Path, store: FtpStore, certs: Certs, outside: Path, guest: str = "g1", *extra: str
) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [str(VERIFIER_PATH), "--guest", guest, "--customer", "c1",
         "--host", "localhost", "--port", str(store.port), "--ca-file", str(certs.good_cert),
         "--timeout", "5", "--work-dir", str(tmp_path / "vwork"), "--state-dir", str(tmp_path / "vstate"),
         "--scratch-dir", str(outside / "scratch"), "--run-as", RUN_AS,
         "--textfile", str(tmp_path / "verify.prom"), "--password-stdin", *extra],
        input=PASSWORD + "\n", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert PASSWORD not in result.stdout + result.stderr
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def success_metric(tmp_path: Path) -> float:
    found = samples((tmp_path / "verify.prom").read_text())
    return found['vpsfleet_backup_verify_last_success_timestamp_seconds{guest="g1"}']


def reader(store: FtpStore) -> None:
    """The customer's read-only account over all of its guests (ProFTPD's layout)."""
    if not store._handler.authorizer.has_user("c1"):
        store._handler.authorizer.add_user("c1", PASSWORD, str(store.root / "c1"), perm="elr")


def publish(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB, compression: str = "zstd"
) -> None:
    reader(store)
    config = make_config(tmp_path, store, certs, site,
        databases="all", mysql_defaults_file=str(mariadb.backup_defaults), compression=compression,
    )  # fmt: skip
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"


# zstd: the fleet's default; gzip: an offer that keeps it, and every set made before zstd was
# the default (the verifier reads each file by its suffix, whatever the compression of the day).
@pytest.mark.parametrize(("compression", "ext"), [("zstd", ".zst"), ("gzip", ".gz")])
def test_good_set_passes_then_damage_fails(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB,
    outside: Path, compression: str, ext: str,
) -> None:  # fmt: skip
    reader(store)
    code, result = verify(tmp_path, store, certs, outside)
    assert code == 3 and result["no_set"] is True
    publish(tmp_path, store, certs, site, mariadb, compression)
    code, result = verify(tmp_path, store, certs, outside)
    assert (code, result["ok"]) == (0, True), result["reasons"]
    assert result["set"] == SET
    checked = sorted(c["file"] for c in result["checked"])
    assert checked == [f"db/shop.sql{ext}", f"db/wiki.sql{ext}", f"www.tar{ext}"]
    assert result["sandbox"]["user"] == RUN_AS
    namespaces = subprocess.run(["unshare", "--net", "true"], check=False).returncode == 0
    assert result["sandbox"]["network_namespace"] is namespaces  # auto: where the host allows one
    passed = success_metric(tmp_path)
    assert passed > 0
    assert not list((tmp_path / "vwork").iterdir())  # the download is removed
    assert not list((outside / "scratch").iterdir())  # and the scratch datadirs
    assert oct((outside / "scratch").stat().st_mode & 0o7777) == "0o710"
    # A flipped byte in the archive.
    archive = store.home / SET / f"www.tar{ext}"
    intact = archive.read_bytes()
    damaged = bytearray(intact)
    damaged[len(damaged) // 2] ^= 0x01
    archive.write_bytes(bytes(damaged))
    code, result = verify(tmp_path, store, certs, outside)
    assert code == 1 and result["ok"] is False
    assert any(r.startswith("sha256sum -c") and f"www.tar{ext}" in r for r in result["reasons"])
    assert success_metric(tmp_path) == passed  # the last success is kept
    archive.write_bytes(intact)
    # A dump cut short.
    dump = store.home / SET / "db" / f"shop.sql{ext}"
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    code, result = verify(tmp_path, store, certs, outside)
    assert code == 1
    assert any(f"db/shop.sql{ext}" in r and "Dump completed" in r for r in result["reasons"])
    assert {c["file"]: c["ok"] for c in result["checked"]}[f"db/wiki.sql{ext}"] is True


def hostile_payloads(markers: Path) -> dict[str, str]:
    """What a customer who is root on the guest could slip into a dump: each would touch its
    marker if the client ran it (the real client's verdicts: tests/backup/test_dump_screen.py)."""
    source = markers.parent / "source.sql"
    source.write_text(f"\\! touch {markers}/source\n")
    return {
        "bang": f"\\! touch {markers}/bang\n",
        "system": f"system touch {markers}/system\n",
        "statement": f"SELECT 1; system touch {markers}/statement;\n",
        # The quote as delimiter: a screen that tracks quotes would think the next line is data.
        "delimiter": f"DELIMITER '\nSELECT 1'\n\\! touch {markers}/delimiter\nDELIMITER ;\n",
        "source": f"SELECT 1 /* c */; source {source}\n",
        # NO_BACKSLASH_ESCAPES spelt so that no keyword shows: the client then ends 'a\' early.
        "mode": "SET @m = CONCAT('NO_BACKSLASH', '_ESCAPES');\nSET sql_mode = @m;\n"
        f"SELECT 'a\\'; \\! touch {markers}/mode\n",
    }


def with_payload(dump: bytes, payload: str) -> bytes:
    """The dump with `payload` before its trailer, so that it is still complete, and without the
    line of mariadb-dump (10.11.8 and later) that switches the client to its sandbox mode: the
    customer writes the whole file."""
    if dump.startswith(b"/*M!999999\\- enable the sandbox mode */"):
        dump = dump.split(b"\n", 1)[1]
    at = dump.rindex(b"-- Dump completed")
    return dump[:at] + payload.encode() + dump[at:]


def rewrite_sums(folder: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder)}" for p in files]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def test_hostile_dumps_are_refused_and_nothing_runs(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB,
    outside: Path,
) -> None:  # fmt: skip
    publish(tmp_path, store, certs, site, mariadb)
    folder = store.home / SET
    good = unpack(folder / "db" / "shop.sql.zst")
    markers = outside / "markers"
    # The hostile dumps in gzip beside the set's zstd ones: each file is read by its suffix.
    for name, payload in hostile_payloads(markers).items():
        (folder / "db" / f"evil-{name}.sql.gz").write_bytes(gzip.compress(with_payload(good, payload)))
    rewrite_sums(folder)  # the checksums match: only the dumps' content is hostile
    # Without a network namespace, as in a container (the lab's store): the rest still holds.
    code, result = verify(tmp_path, store, certs, outside, "g1", "--network-namespace", "off")
    assert code == 1 and result["ok"] is False
    assert result["sandbox"]["network_namespace"] is False
    checked = {c["file"]: c["ok"] for c in result["checked"]}
    assert checked["db/shop.sql.zst"] is True and checked["db/wiki.sql.zst"] is True
    for name in hostile_payloads(markers):
        assert checked[f"db/evil-{name}.sql.gz"] is False
        reason = next(r for r in result["reasons"] if f"evil-{name}" in r)
        assert "refused, nothing of it loaded" in reason, reason
    assert list(markers.iterdir()) == []


def test_the_sandbox_holds_without_the_screen(tmp_path: Path, mariadb: MariaDB, outside: Path) -> None:
    """The screen is belt and braces: each hostile dump loaded straight into the scratch MariaDB
    (`mariadb --sandbox --binary-mode` as the unprivileged account, secure_file_priv on an empty
    folder of root's) fails to load and leaves no marker."""
    good = subprocess.run(
        ["mariadb-dump", f"--defaults-extra-file={mariadb.root_defaults}", "--routines", "--events",
         "--triggers", "--hex-blob", "shop"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    markers = outside / "markers"
    payloads = hostile_payloads(markers) | {
        "outfile": f"SELECT 'x' INTO OUTFILE '{markers}/outfile';\n",
        "local": "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE product;\n",
        "plugin": "INSTALL SONAME 'ha_connect';\n",
    }
    args = argparse.Namespace(
        customer="c1", guest="g1", host="localhost", ca_file="/dev/null",
        scratch_dir=str(outside / "scratch"), scratch_factor=4, load_timeout=120.0,
    )  # fmt: skip
    sandbox = Sandbox(RUN_AS, "off")  # no network namespace: what a container allows
    check_private(outside / "scratch", group=sandbox.gid)
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    for name, payload in payloads.items():
        dump = work / f"{name}.sql.gz"
        dump.write_bytes(gzip.compress(with_payload(good, payload)))
        failed = load_dump(args, sandbox, work, dump, f"db/{name}.sql.gz", "evil", screen=False)
        assert failed is not None and "does not load" in failed, (name, failed)
        assert list(markers.iterdir()) == [], name
    # The scratch server runs as the unprivileged account, with no new privileges.
    with scratch_mariadb(outside / "scratch", sandbox, work) as db:
        assert db.proc is not None
        status = Path(f"/proc/{db.proc.pid}/status").read_text()
        uid = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        assert set(uid) == {str(sandbox.uid)} and "NoNewPrivs:\t1" in status
        assert db.datadir.stat().st_uid == sandbox.uid
    # The same dump without a payload loads: what failed above is the payloads.
    dump = work / "good.sql.gz"
    dump.write_bytes(gzip.compress(good))
    assert load_dump(args, sandbox, work, dump, "db/good.sql.gz", "good", screen=False) is None
    assert list((outside / "scratch").iterdir()) == []


def test_the_verifier_screens_with_the_agents_screen(tmp_path: Path, mariadb: MariaDB) -> None:
    """One screen: the verifier has none of its own and refuses with the agent's findings (its
    cases, checked against the real client: tests/backup/test_dump_screen.py); a real dump
    passes; a dump cut short is reported as such."""
    for module in (check, sandbox_module, scratch_module, verify_cli):
        assert not hasattr(module, "DumpScreen")
    good = subprocess.run(
        ["mariadb-dump", f"--defaults-extra-file={mariadb.root_defaults}", "--routines", "--events",
         "--triggers", "--hex-blob", "shop"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    args = argparse.Namespace(customer="c1", guest="g1", host="localhost", ca_file="/dev/null")
    sandbox = Sandbox(RUN_AS, "off")
    unpack = agent_config(args)
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o755)

    def screened(name: str, data: bytes) -> str | None:
        path = work / f"{name}.sql.gz"
        path.write_bytes(gzip.compress(data))
        path.chmod(0o644)
        reason, size = screen_dump(sandbox, decompressor(unpack, path.name), path, f"db/{path.name}", 60.0)
        assert size == len(data) or reason is not None  # a refusal stops reading
        result: str | None = reason
        return result

    assert screened("good", good) is None
    reason = screened("statement", with_payload(good, "SELECT 1; system touch /tmp/x;\n"))
    assert reason is not None and "refused, nothing of it loaded: line " in reason
    assert "client command 'system'" in reason
    mode = (
        "SET @m = CONCAT('NO_BACKSLASH', '_ESCAPES');\nSET sql_mode = @m;\nSELECT 'a\\'; \\! touch /tmp/x\n"
    )
    reason = screened("mode", with_payload(good, mode))
    assert reason is not None and "refused, nothing of it loaded" in reason
    reason = screened("cut", good[: len(good) // 2])
    assert reason is not None and "lacks its '-- Dump completed' line" in reason


def test_scratch_folders_must_be_roots_and_the_sandbox_never_root(
    tmp_path: Path, store: FtpStore, certs: Certs, outside: Path
) -> None:
    elsewhere = outside / "elsewhere"
    elsewhere.mkdir()
    (outside / "scratch").symlink_to(elsewhere)
    code, result = verify(tmp_path, store, certs, outside)
    assert code == 1 and "symbolic link" in " ".join(result["reasons"])
    (outside / "scratch").unlink()
    os.chown(elsewhere, 65534, 65534)
    code, result = verify(tmp_path, store, certs, outside, "g1", "--scratch-dir", str(elsewhere))
    assert code == 1 and "not a folder of root's" in " ".join(result["reasons"])
    code, result = verify(tmp_path, store, certs, outside, "g1", "--run-as", "root")
    assert code == 1 and "never runs as root" in " ".join(result["reasons"])
