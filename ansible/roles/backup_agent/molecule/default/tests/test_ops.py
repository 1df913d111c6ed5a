"""The backup operations playbooks, run with ansible-playbook against the scenario's inventory as
an operator would: backup-now publishes a set; restore brings files and databases back beside
the originals (into the role's root-only /var/lib/vpsfleet-backup/restore/<set>) and over them,
keeping what it replaces (`<db>_before_restore_<stamp>`, /var/lib/vpsfleet-backup/replaced/<stamp>/,
named in the agent's JSON result; issue 10, #3, #11); the monthly allowance (2 here) refuses the
third request and lets a forced one with a reason through, recorded on the store (M23);
verify-backups passes on a good set, lists a guest that stopped publishing (M24), fails on a
damaged set and on a cut-short dump (M21), and
refuses a dump that carries client commands without running any, its scratch database run by the
unprivileged account vpsfleet-verify (issue 10). The tests run in order: each builds on the state
the previous one left.

They run on the guest and store of the role's scenario, after tests/test_default.py (Molecule's
testinfra verifier runs the test files in sorted order): the role's tests leave today's set
published and the guest as prepare.yml made it (their faults cleared, their scratch database
dropped). These tests were the scenario molecule/backup_ops, which built the same store, guest and
sink a second time (issue 15); the one change is the starting point below (`published`): they
start from a guest whose only database is `shop`, as that scenario's was."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import testinfra

from tests.metric_samples import samples

testinfra_hosts = ["backup-role-guest"]

REPO = Path(__file__).resolve().parents[6]
GUEST = "backup-role-guest"
STORE = "backup-role-store"
SET_FOLDER = f"/srv/vpsfleet-backup/c-alpha/{GUEST}"
COUNTER = f"/var/lib/vpsfleet-backup-store/restores/{GUEST}.json"
RESTORE_DIR = "/var/lib/vpsfleet-backup/restore"  # the side copies (role backup_agent, root only)
REPLACED_DIR = "/var/lib/vpsfleet-backup/replaced"  # what a restore in place replaced
RESTORE_TASK = "Restore on the guest (downloads and checks the set before anything is applied)"
SHOP_CONTENT = "SELECT id, name, price, HEX(photo) FROM items ORDER BY id"


def environment() -> tuple[str, dict[str, str]]:
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    ephemeral = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    assert inventory and ephemeral, (
        "run by Molecule: MOLECULE_INVENTORY_FILE and MOLECULE_EPHEMERAL_DIRECTORY"
    )
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(REPO / "ansible/roles"),
        # The collection vpsfleet.platform (its filters by FQCN), as molecule/shared/base.yml has it.
        "ANSIBLE_COLLECTIONS_PATH": f"{REPO}/.cache/collections:{REPO}/.venv/lib/python3.11/site-packages",
        "ANSIBLE_INVENTORY_PLUGINS": str(REPO / "ansible/plugins/inventory"),
        "ANSIBLE_PIPELINING": "true",
        "ANSIBLE_FORCE_COLOR": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "VERIFY_SUMMARY_FILE": str(Path(ephemeral) / "verify-summary.json"),
    }
    config = Path(ephemeral) / "ansible.cfg"
    if config.exists():
        env["ANSIBLE_CONFIG"] = str(config)
    # The inventory folder: Molecule writes the group_vars/host_vars beside the hosts file.
    return str(Path(inventory).parent), env


def playbook(name: str, *extra: str, json_output: bool = False) -> subprocess.CompletedProcess[str]:
    """ansible-playbook NAME; with json_output, its output is one JSON document (every task's
    result, the registered ones included)."""
    inventory, env = environment()
    if json_output:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    return subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", inventory,
         str(REPO / "ansible/playbooks" / name), *extra],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


def said(run: subprocess.CompletedProcess[str]) -> str:
    """The playbook's output (failures go to stderr under Molecule's display_failed_stderr) with
    its line wrapping undone (the yaml callback folds messages)."""
    return " ".join((run.stdout + run.stderr).split())


def store() -> Any:
    return testinfra.get_host(f"podman://{STORE}")


def sql(host: Any, statement: str, database: str = "shop") -> str:
    return str(
        host.check_output(
            f'mariadb --default-character-set=utf8mb4 --batch --skip-column-names {database} -e "{statement}"'
        )
    )


def site_sums(host: Any, root: str) -> str:
    """Every file's SHA-256 and every link's target under root/data/www, relative names."""
    return str(
        host.check_output(
            f"cd {root}/data/www && find . -type f -print0 | sort -z | xargs -0 sha256sum"
            " && find . -type l -printf '%p -> %l\\n' | sort"
        )
    )


def counter() -> list[dict[str, Any]]:
    box = store()
    if not box.file(COUNTER).exists:
        return []
    data: list[dict[str, Any]] = json.loads(box.file(COUNTER).content_string)
    return data


@pytest.fixture(scope="module")
def published(host: Any) -> dict[str, Any]:
    """backup-now.yml once; the state the tests start from. The role's tests (test_default.py)
    want a second database, `blog`; these restore everything in place and expect `shop` alone
    to be replaced, so `blog` goes first, and the set published here holds `shop` alone."""
    host.check_output("mariadb -e 'DROP DATABASE IF EXISTS blog'")
    run = playbook("backup-now.yml", "-e", f"guest={GUEST}")
    assert run.returncode == 0, said(run)[-3000:]
    status = json.loads(host.file("/var/lib/vpsfleet-backup/status.json").content_string)
    return {
        "run": run,
        "set": status["last_success"]["set"],
        "site": site_sums(host, ""),
        "shop": sql(host, SHOP_CONTENT),
    }


def test_backup_now_publishes_a_set(host: Any, published: dict[str, Any]) -> None:
    night = published["set"]
    assert f"published set {night}" in said(published["run"])
    listing = store().check_output(f"ls {SET_FOLDER}/{night} {SET_FOLDER}/{night}/db")
    assert "SHA256SUMS" in listing and "www.tar.gz" in listing and "shop.sql.gz" in listing
    assert store().run(f"cd {SET_FOLDER}/{night} && sha256sum -c SHA256SUMS").rc == 0
    # The playbook refuses to back up the whole fleet by accident.
    refused = playbook("backup-now.yml")
    assert refused.returncode != 0 and "name the guests" in said(refused)


def test_restore_in_check_mode_changes_and_counts_nothing(host: Any, published: dict[str, Any]) -> None:
    run = playbook("restore.yml", "--check", "-e", f"guest={GUEST}", "-e", "what=all", "-e", "target=side")
    assert run.returncode == 0, said(run)[-3000:]
    assert counter() == []
    assert not host.file(f"{RESTORE_DIR}/{published['set']}").exists


def test_restore_beside_the_originals(host: Any, published: dict[str, Any]) -> None:
    night = published["set"]
    host.check_output("echo defaced > /data/www/site1/page1.php && rm '/data/www/site2/nom avec espaces.txt'")
    sql(host, "UPDATE items SET name = 'changed' WHERE id = 1; CREATE TABLE later (x INT);")
    run = playbook(
        "restore.yml", "-e", f"guest={GUEST}", "-e", "set=latest", "-e", "what=all", "-e", "target=side"
    )
    assert run.returncode == 0, said(run)[-3000:]
    # Into the role's root-only folder, never a predictable path in /var/tmp (issue 10, #3).
    restore_dir = host.file(RESTORE_DIR)
    assert (restore_dir.user, restore_dir.mode) == ("root", 0o700)
    assert not host.file("/var/tmp/vpsfleet-restore").exists
    assert site_sums(host, f"{RESTORE_DIR}/{night}") == published["site"]
    side = "shop_restored_" + night.replace("-", "")
    assert sql(host, SHOP_CONTENT, side) == published["shop"]
    assert "items_audit" in sql(host, "SHOW TRIGGERS", side)
    assert "purge_audit" in sql(host, "SHOW EVENTS", side)
    assert "cheap_items" in sql(host, "SHOW FULL TABLES WHERE Table_type = 'VIEW'", side)
    # The live copies are untouched by a side restore.
    assert host.file("/data/www/site1/page1.php").content_string == "defaced\n"
    assert sql(host, "SELECT name FROM items WHERE id = 1") == "changed"
    assert [(r["set"], r["forced"]) for r in counter()] == [(night, False)]


def task_result(run: subprocess.CompletedProcess[str], task: str) -> dict[str, Any]:
    """The guest's result of `task` in a playbook run with json_output (a role's task is named
    "ROLE : TASK" there: the playbooks' work is in the roles' entry points)."""
    for play in json.loads(run.stdout)["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"].split(" : ")[-1] == task and GUEST in entry["hosts"]:
                result: dict[str, Any] = entry["hosts"][GUEST]
                return result
    raise AssertionError(f"no result for {task!r}")


def test_restore_in_place_keeps_what_it_replaces(host: Any, published: dict[str, Any]) -> None:
    """Over the originals; the live database is kept as `shop_before_restore_<stamp>` and every
    replaced entry under `replaced/<stamp>/`, both named in the agent's JSON result and in the
    playbook's message (issue 10, #11)."""
    run = playbook(
        "restore.yml", "-e", f"guest={GUEST}", "-e", f"set={published['set']}", "-e", "what=all",
        "-e", "target=in_place", json_output=True,
    )  # fmt: skip
    assert run.returncode == 0, said(run)[-3000:]
    assert site_sums(host, "") == published["site"]
    assert sql(host, SHOP_CONTENT) == published["shop"]
    assert "later" not in sql(host, "SHOW TABLES")
    assert "count_items" in sql(host, "SHOW PROCEDURE STATUS WHERE Db = 'shop'")
    assert len(counter()) == 2
    # What was live before the restore, kept and named.
    result = json.loads(task_result(run, RESTORE_TASK)["stdout"])  # the agent's --json
    assert result["reason"] == "ok" and result["set"] == published["set"]
    kept_files, kept_databases = result["replaced"]["files"], result["replaced"]["databases"]
    assert kept_files is not None and kept_files.startswith(f"{REPLACED_DIR}/")
    stamp = kept_files.rsplit("/", 1)[1]
    assert len(stamp) == 12 and stamp.isdigit(), stamp  # YYYYmmddHHMM
    assert kept_databases == {"shop": f"shop_before_restore_{stamp}"}
    folder = host.file(kept_files)
    assert folder.is_directory and folder.user == "root"
    assert host.file(f"{kept_files}/data/www/site1/page1.php").content_string == "defaced\n"
    assert sql(host, "SELECT name FROM items WHERE id = 1", f"shop_before_restore_{stamp}") == "changed"
    assert "later" in sql(host, "SHOW TABLES", f"shop_before_restore_{stamp}")
    message = task_result(run, "Say what was restored, or why not")["msg"]
    assert f"replaced files in {kept_files}" in message
    assert f"database shop as it was in shop_before_restore_{stamp}" in message


def test_allowance_refuses_the_third_request_unless_forced_with_a_reason(published: dict[str, Any]) -> None:
    request = [
        "-e",
        f"guest={GUEST}",
        "-e",
        "what=databases",
        "-e",
        '{"databases": ["shop"]}',
        "-e",
        "target=side",
    ]
    refused = playbook("restore.yml", *request)
    assert refused.returncode != 0
    assert "allows 2 restore request(s) a month and 2 were made this month" in said(refused)
    assert "all -> side" in said(refused) and "all -> in_place" in said(refused)
    assert len(counter()) == 2  # a refused request is not counted
    no_reason = playbook("restore.yml", *request, "-e", "force=true")
    assert no_reason.returncode != 0 and "a forced request needs a reason" in said(no_reason)
    reason = json.dumps({"reason": "ticket 4711, granted by ops"})
    forced = playbook("restore.yml", *request, "-e", "force=true", "-e", reason)
    assert forced.returncode == 0, said(forced)[-3000:]
    entries = counter()
    assert len(entries) == 3
    assert entries[-1]["forced"] is True and entries[-1]["reason"] == "ticket 4711, granted by ops"
    assert entries[-1]["what"] == "databases shop -> side"


def test_verify_backups_passes_on_a_good_set(published: dict[str, Any]) -> None:
    run = playbook("verify-backups.yml")
    assert run.returncode == 0, said(run)[-3000:]
    assert f"{GUEST}: OK, set {published['set']}" in said(run)
    metric = store().file("/var/lib/prometheus/node-exporter/vpsfleet_backup_verify.prom").content_string
    assert samples(metric)[f'vpsfleet_backup_verify_last_success_timestamp_seconds{{guest="{GUEST}"}}'] > 0
    # The sandbox ran as its own unprivileged account.
    summary = json.loads(
        (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "verify-summary.json").read_text()
    )
    assert summary["results"][0]["sandbox"]["user"] == "vpsfleet-verify"
    # The scratch server is gone; the system's MariaDB on the store stays stopped and disabled.
    box = store()
    assert not box.service("mariadb").is_running and not box.service("mariadb").is_enabled
    assert box.run("pgrep -x mariadbd").rc != 0


def test_verify_backups_lists_a_guest_that_stopped_publishing(published: dict[str, Any]) -> None:
    """M24: the newest set older than the tolerance (lowered to -1 night here, so that today's
    set counts as too old: the store's clock cannot be moved) flags the guest in the summary;
    a warning, and a failure with verify_stale_fails."""
    stale = json.dumps({"guests": [GUEST], "backup_store_verify_stale_after_nights": -1})
    run = playbook("verify-backups.yml", "-e", stale)
    assert run.returncode == 0, said(run)[-3000:]
    assert "STOPPED PUBLISHING" in said(run)
    summary = json.loads(
        (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "verify-summary.json").read_text()
    )
    assert summary["stale"] == [GUEST]
    [result] = summary["results"]
    assert result["stale"] is True and result["nights_without_set"] == 0 and result["ok"] is True
    failing = playbook("verify-backups.yml", "-e", stale, "-e", "verify_stale_fails=true")
    assert failing.returncode != 0 and "STOPPED PUBLISHING" in said(failing)
    # With the policy's tolerance, the same guest publishes in time.
    summary_run = playbook("verify-backups.yml", "-e", json.dumps({"guests": [GUEST]}))
    assert summary_run.returncode == 0
    assert (
        json.loads((Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "verify-summary.json").read_text())[
            "stale"
        ]
        == []
    )


def test_verify_backups_fails_on_a_flipped_byte(published: dict[str, Any]) -> None:
    box = store()
    archive = f"{SET_FOLDER}/{published['set']}/www.tar.gz"
    box.check_output(f"cp -p {archive} /root/www.tar.gz.good")
    box.check_output(
        f"python3 -c \"import sys; p=sys.argv[1]; d=bytearray(open(p,'rb').read()); d[len(d)//2]^=1;"
        f" open(p,'wb').write(d)\" {archive}"
    )
    try:
        run = playbook("verify-backups.yml", "-e", json.dumps({"guests": [GUEST]}))
    finally:
        box.check_output(f"cp -p /root/www.tar.gz.good {archive}")
    assert run.returncode != 0
    assert f"{GUEST}: FAIL" in said(run) and "sha256sum -c" in said(run) and "www.tar.gz" in said(run)


def test_verify_backups_fails_on_a_cut_short_dump(published: dict[str, Any]) -> None:
    """A dump cut short and compressed again, its checksum made to match: only the load and the
    trailer check can tell."""
    box = store()
    folder = f"{SET_FOLDER}/{published['set']}"
    box.check_output(
        f"cd {folder} && cp -p db/shop.sql.gz /root/shop.sql.gz.good && cp -p SHA256SUMS /root/SUMS.good"
        " && gunzip -c db/shop.sql.gz | head -c 20000 | gzip -c > /root/short.gz"
        " && cat /root/short.gz > db/shop.sql.gz && grep -v ' db/shop.sql.gz$' /root/SUMS.good > SHA256SUMS"
        " && sha256sum db/shop.sql.gz >> SHA256SUMS"
    )
    try:
        run = playbook("verify-backups.yml", "-e", json.dumps({"guests": [GUEST]}))
    finally:
        box.check_output(
            f"cd {folder} && cat /root/shop.sql.gz.good > db/shop.sql.gz && cat /root/SUMS.good > SHA256SUMS"
        )
    assert run.returncode != 0
    assert f"{GUEST}: FAIL" in said(run) and "db/shop.sql.gz" in said(run)
    assert "Dump completed" in said(run)


HOSTILE = """
import gzip, hashlib, pathlib, sys
folder = pathlib.Path(sys.argv[1])
dump = gzip.decompress((folder / "db/shop.sql.gz").read_bytes())
if dump.startswith(b"/*M!999999"):
    dump = dump.split(b"\\n", 1)[1]  # the customer writes the whole file: no sandbox switch
at = dump.rindex(b"-- Dump completed")
payload = (b"\\\\! touch /var/tmp/hostile-bang\\nsystem touch /var/tmp/hostile-system\\n"
           b"SELECT 1; system touch /var/tmp/hostile-statement;\\n")
(folder / "db/shop.sql.gz").write_bytes(gzip.compress(dump[:at] + payload + dump[at:]))
sums = (folder / "SHA256SUMS").read_text().splitlines()
sums = [line for line in sums if not line.endswith(" db/shop.sql.gz")]
sums.append(hashlib.sha256((folder / "db/shop.sql.gz").read_bytes()).hexdigest() + "  db/shop.sql.gz")
(folder / "SHA256SUMS").write_text("\\n".join(sums) + "\\n")
"""


def test_verify_backups_refuses_a_hostile_dump_and_runs_nothing(published: dict[str, Any]) -> None:
    """The customer of an unmanaged VPS is root on the guest and can upload any set: a dump with
    `\\!` and `system` lines, and `system` after a statement on the same line (checksums made to
    match), is refused by the agent's screen, nothing runs on the store."""
    box = store()
    folder = f"{SET_FOLDER}/{published['set']}"
    box.check_output(
        f"cd {folder} && cp -p db/shop.sql.gz /root/shop.sql.gz.good && cp -p SHA256SUMS /root/SUMS.good"
    )
    try:
        box.check_output(f"python3 -c {shlex.quote(HOSTILE)} {folder}")
        run = playbook("verify-backups.yml", "-e", json.dumps({"guests": [GUEST]}))
    finally:
        box.check_output(
            f"cd {folder} && cat /root/shop.sql.gz.good > db/shop.sql.gz && cat /root/SUMS.good > SHA256SUMS"
        )
    assert run.returncode != 0
    assert f"{GUEST}: FAIL" in said(run) and "refused, nothing of it loaded" in said(run), said(run)[-3000:]
    assert "line " in said(run)  # the screen's finding, with its line
    for marker in ("bang", "system", "statement"):
        assert not box.file(f"/var/tmp/hostile-{marker}").exists
    assert box.run("pgrep -x mariadbd").rc != 0
