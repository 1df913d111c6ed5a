"""The store's daily jobs against what tenants and clocks can do to them (issue 10): one tenant's
garbage (bad names, non-ASCII digits, symbolic links, files where folders belong, unreadable
folders) never stops a job for the others and is reported for that tenant; future-dated sets are
quarantined and never count as the newest; a clock that jumps keeps the minimum of sets; trees no
configuration names are erased with a log line, never on an empty or suspect configuration; a
reused name never gets another identity's tree; unsafe configuration strings are refused."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backup_store.conftest import TODAY, day, home, make_set, make_sets, save
from tests.metric_samples import samples
from vpsfleet_agents.store.accounts import hash_passwords
from vpsfleet_agents.store.cli import main
from vpsfleet_agents.store.config import Refused
from vpsfleet_agents.store.dead_man import dead_man
from vpsfleet_agents.store.erasure import erase, erase_stale
from vpsfleet_agents.store.identities import identities
from vpsfleet_agents.store.quota import quota
from vpsfleet_agents.store.retention import retention


def fullwidth(text: str) -> str:
    """The same date in fullwidth digits: `\\d` takes them (and `int()` too), `[0-9]` does not."""
    return "".join(chr(0xFF10 + int(c)) if c in "0123456789" else c for c in text)


def active(config: dict[str, Any], *names: str, customer: str = "c1") -> None:
    """More active guests of `customer` (3 days of retention)."""
    for name in names:
        config["guests"].append({"guest": name, "customer": customer, "state": "active",
                                 "terminated_on": None, "retention_days": 3,
                                 "identity": f"{name}@2026-02-02"})  # fmt: skip
    if not any(c["id"] == customer for c in config["customers"]):
        config["customers"].append({"id": customer, "quota_bytes": 0, "guests": list(names),
                                    "identity": f"{customer}@2025-01-01"})  # fmt: skip


def mail(config: dict[str, Any]) -> str:
    path = Path(config["sendmail"]).with_name("mail.txt")
    return path.read_text() if path.exists() else ""


def metrics(config: dict[str, Any], name: str = "vpsfleet_backup_store.prom") -> dict[str, float]:
    return samples(Path(config["textfile_dir"], name).read_text())


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A tree outside the store, with a set in it, that a tenant's link points to."""
    target = tmp_path / "outside"
    make_set(target / day(0), 777)
    return target


# --- one tenant's garbage ------------------------------------------------------------------------


@pytest.fixture
def garbage(
    config: dict[str, Any], outside: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """g1 holds every kind of bad entry beside its real sets; g3's folder is a link out of the
    store; g4's is a file; g5 is a plain guest that missed tonight's set; g7's folder cannot be
    read; customer c3's folder is a link out of the store."""
    active(config, "g3", "g4", "g5", "g7")
    active(config, "g6", customer="c3")
    g1 = home(config, "c1", "g1")
    make_sets(g1, range(6))
    (g1 / fullwidth(day(0))).mkdir()  # date.fromisoformat raised on it in the dead-man check
    (g1 / "2026-13-45").mkdir()  # no such date
    (g1 / day(11)).write_text("a file, not a set")
    (g1 / day(10)).symlink_to(outside)  # a link named like an expired set
    os.mkdir(os.fsencode(g1) + b"/\xff\xfe-not-utf8")
    (g1 / "two\nlines").mkdir()
    home(config, "c1", "g3").parent.mkdir(parents=True, exist_ok=True)
    home(config, "c1", "g3").symlink_to(outside)
    home(config, "c1", "g4").write_text("a file where a folder belongs")
    make_set(home(config, "c1", "g5") / day(1))
    make_set(home(config, "c1", "g7") / day(0))
    Path(config["root"], "c3").symlink_to(outside.parent)
    unreadable = str(home(config, "c1", "g7"))
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if str(path) == unreadable:
            raise PermissionError(13, "Permission denied", unreadable)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    yield config
    assert (outside / day(0) / "www.tar.gz").stat().st_size == 777  # nothing followed a link


def test_one_tenants_garbage_never_stops_retention(garbage: dict[str, Any]) -> None:
    report = retention(garbage, TODAY)
    g1 = home(garbage, "c1", "g1")
    # g1's real sets are trimmed to 3 days; everything else in its folder is left as it was.
    assert {r["set"] for r in report["removed"] if r["guest"] == "g1"} == {day(3), day(4), day(5)}
    assert (g1 / day(10)).is_symlink() and (g1 / day(11)).is_file()
    problems = {(p["kind"], p["guest"]): p for p in report["problems"]}
    assert len(problems["garbage", "g1"]["entries"]) == 6
    assert "two\\nlines" in problems["garbage", "g1"]["problem"]  # one line in the journal
    assert "symbolic link" in problems["error", "g3"]["problem"]
    assert "not a folder" in problems["error", "g4"]["problem"]
    assert "Permission denied" in problems["error", "g7"]["problem"]
    assert "symbolic link" in problems["error", "g6"]["problem"]  # its customer's folder is a link
    assert not any(p["guest"] == "g5" for p in report["problems"])


def test_one_tenants_garbage_never_stops_the_dead_man_check(garbage: dict[str, Any]) -> None:
    report = dead_man(garbage, TODAY)
    assert report["checked"] == ["g1", "g3", "g4", "g5", "g7", "g6"]
    assert sorted(m["guest"] for m in report["missing"]) == ["g3", "g4", "g5", "g6", "g7"]
    assert report["mailed"] is True
    text = mail(garbage)
    assert "g5" in text and "newest set: " + day(1) in text
    assert "symbolic link" in text and "Permission denied" in text  # per tenant, in the same mail
    shown = metrics(garbage)
    assert shown['vpsfleet_backup_store_set_present{customer="c1",guest="g1"}'] == 1
    # The link's set is not g3's.
    assert shown['vpsfleet_backup_store_set_present{customer="c1",guest="g3"}'] == 0
    assert shown['vpsfleet_backup_store_customer_bytes{customer="c3"}'] == 0  # never followed


def test_one_tenants_garbage_never_stops_the_daily_job(garbage: dict[str, Any], tmp_path: Path) -> None:
    """The whole daily job, as the timer runs it: it ends, every other tenant processed, and
    alerts (exit 1, one mail) for the tenants it could not process."""
    make_set(home(garbage, "c1", "old") / day(40))  # erasure still runs
    assert main(["--config", save(garbage, tmp_path), "--today", TODAY.isoformat(), "daily"]) == 1
    assert not home(garbage, "c1", "old").exists()
    kept = sorted(p.name for p in home(garbage, "c1", "g1").iterdir() if p.name.startswith("2026-11-2"))
    assert kept == [day(2), day(1), day(0)]
    daily = metrics(garbage, "vpsfleet_backup_store_daily.prom")
    assert daily['vpsfleet_backup_store_unexpected_entries{customer="c1",guest="g1"}'] == 6
    assert daily['vpsfleet_backup_store_unexpected_entries{customer="c1",guest="g5"}'] == 0
    assert "the daily job of 2026-11-23 found" in mail(garbage)
    assert quota(garbage)["usage"]["c3"] == 0


# --- clocks ------------------------------------------------------------------------------------------


def test_future_sets_are_quarantined_and_never_count_as_the_newest(
    config: dict[str, Any], tmp_path: Path
) -> None:
    active(config, "g5", "g8")
    g1 = home(config, "c1", "g1")
    for n in (1, 2):
        make_set(g1 / day(n))
    make_set(g1 / "2027-06-01")  # its clock ran seven months ahead one night
    make_set(g1 / (TODAY + dt.timedelta(days=1)).isoformat())  # tomorrow: a time zone, not a clock fault
    for name in ("g5", "g8"):
        make_set(home(config, "c1", name) / day(0))
    report = dead_man(config, TODAY)
    assert [(m["guest"], m["newest"]) for m in report["missing"]] == [
        ("g1", (TODAY + dt.timedelta(days=1)).isoformat())
    ]
    assert "2027-06-01" in mail(config) and "dated after tomorrow" in mail(config)
    assert metrics(config)['vpsfleet_backup_store_newest_set_age_days{customer="c1",guest="g1"}'] == -1
    assert main(["--config", save(config, tmp_path), "--today", TODAY.isoformat(), "daily"]) == 1
    kept = Path(config["root"], "c1", ".vpsfleet", "quarantine", "g1", "2027-06-01")
    assert (kept / "www.tar.gz").exists() and not (g1 / "2027-06-01").exists()
    assert kept.parent.stat().st_uid == os.geteuid() and oct(kept.parent.stat().st_mode & 0o777) == "0o755"
    assert "quarantined: 2027-06-01" in mail(config)
    daily = metrics(config, "vpsfleet_backup_store_daily.prom")
    assert daily['vpsfleet_backup_store_quarantined_sets{customer="c1",guest="g1"}'] == 1
    assert dead_man(config, TODAY)["missing"][0]["guest"] == "g1"
    # The customer's tally still counts it (its data), and its erasure takes it (M11).
    assert quota(config)["usage"]["c1"] >= 400
    config["guests"][0].update(state="terminated", terminated_on=day(0))
    entry = erase(config, TODAY, only="g1")["erased"][0]
    assert entry["bytes"] == 400 and not kept.parent.exists()


def test_a_store_clock_behind_quarantines_nothing(config: dict[str, Any]) -> None:
    """When most guests' newest sets look future-dated, the store's own clock is the suspect:
    nothing moves, the operators are told."""
    active(config, "g5")
    for name in ("g1", "g5"):
        for n in range(3):
            make_set(home(config, "c1", name) / day(n))
    behind = TODAY - dt.timedelta(days=30)
    report = retention(config, behind)
    assert report["quarantined"] == [] and report["removed"] == []
    assert [p["kind"] for p in report["problems"]] == ["clock"]
    assert len(list(home(config, "c1", "g1").iterdir())) == 3


def test_a_clock_that_jumps_forward_keeps_the_minimum_of_sets(config: dict[str, Any]) -> None:
    g1 = home(config, "c1", "g1")
    make_sets(g1, range(6))
    retention(config, TODAY + dt.timedelta(days=365))  # the store's clock jumped a year
    assert sorted(p.name for p in g1.iterdir()) == [day(2), day(1), day(0)]
    config["retention_minimum_sets"] = 5
    for n in range(3, 6):
        make_set(g1 / day(n))
    retention(config, TODAY + dt.timedelta(days=365))
    assert len(list(g1.iterdir())) == 5


# --- trees no configuration names (M11) ---------------------------------------------------------


def test_trees_the_store_no_longer_hears_about_are_erased_and_logged(
    config: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("g1", "g2", "later"):
        make_set(home(config, "c1", name) / day(0))
    make_set(home(config, "c1", "stranger") / day(3), 500)  # backups turned off, or moved to another store
    make_set(home(config, "c9", "x") / day(3), 20)  # a customer no guest of this store belongs to
    held = Path(config["root"], "c1", ".vpsfleet", "quarantine", "ghost", "2030-01-01")
    make_set(held, 5)  # the quarantined sets of a guest whose tree is gone
    report = erase(config, TODAY, by="test")
    erased = {e["guest"]: e for e in report["erased"] if e["reason"] == "not in the store's configuration"}
    assert set(erased) == {"stranger", "x", "ghost"}
    assert erased["stranger"]["reason"] == "not in the store's configuration"
    assert erased["stranger"]["bytes"] == 500
    assert not home(config, "c1", "stranger").exists() and not Path(config["root"], "c9").exists()
    assert not held.parent.exists()
    assert all(home(config, "c1", name).exists() for name in ("g1", "g2", "later"))
    log = [json.loads(line) for line in Path(config["erasure_log"]).read_text().splitlines()]
    assert {e["guest"] for e in log} == {"stranger", "x", "ghost", "old"}  # old: terminated, its account
    assert "erased stranger of c1 (not in the store's configuration)" in capsys.readouterr().err
    assert erase(config, TODAY)["erased"] == []


def unknown(report: dict[str, Any]) -> set[str]:
    return {e["guest"] for e in report["erased"] if e["reason"] == "not in the store's configuration"}


def test_unknown_trees_are_kept_when_the_configuration_looks_wrong(config: dict[str, Any]) -> None:
    make_set(home(config, "c1", "g1") / day(0))
    for name in ("s1", "s2"):
        make_set(home(config, "c1", name) / day(0))
    # Most of the store's trees in no configuration: a wrong store's list? Nothing erased.
    report = erase(config, TODAY)
    assert unknown(report) == set() and report["problems"][0]["kind"] == "refused"
    assert "--allow-mass-erasure" in report["problems"][0]["problem"]
    # A configuration that names no guest at all erases nothing, even when told to.
    empty = {**config, "guests": [], "customers": []}
    report = erase(empty, TODAY, allow_mass_erasure=True)
    assert unknown(report) == set() and "names no guest" in report["problems"][0]["problem"]
    assert home(config, "c1", "s1").exists() and home(config, "c1", "g1").exists()
    # The operator checked the fleet: it goes.
    report = erase(config, TODAY, allow_mass_erasure=True)
    assert unknown(report) == {"s1", "s2"}


# --- identities: a reused name --------------------------------------------------------------------


def test_a_reused_name_gets_no_account_while_the_former_tree_exists(
    config: dict[str, Any], tmp_path: Path, program: Path
) -> None:
    make_set(home(config, "c1", "g1") / day(0))
    report = identities(config)
    assert report["conflicts"] == []
    assert set(report["adopted"]) == {"guest g1", "customer c1"} and report["written"] == ["guest g2"]
    meta = Path(config["root"], "c1", ".vpsfleet")
    marker = meta / "guests" / "g1"
    assert marker.read_text() == "g1@2026-01-10\n"
    assert marker.stat().st_uid == os.geteuid() and oct(marker.stat().st_mode & 0o777) == "0o644"
    assert identities(config)["changed"] is False  # idempotent
    # g1 terminated, erased late, and a new g1 of the fleet (another identity) arrives.
    config["guests"][0]["identity"] = "g1@2026-11-20"
    report = identities(config)
    [refused] = report["conflicts"]
    assert (refused["kind"], refused["name"], refused["found"]) == ("guest", "g1", "g1@2026-01-10")
    assert (
        "gets no FTP write account" in refused["message"] and "erase-stale --guest g1" in refused["message"]
    )
    assert marker.read_text() == "g1@2026-01-10\n"  # kept, with its sets
    assert home(config, "c1", "g1").exists()
    with pytest.raises(Refused, match="no tree"):
        erase_stale(config, "g2", by="test")
    erased = erase_stale(config, "g1", by="test")["erased"][0]
    assert erased["reason"] == "name reused: the tree held the sets of g1@2026-01-10"
    assert not home(config, "c1", "g1").exists()
    report = identities(config)
    assert report["conflicts"] == [] and report["written"] == ["guest g1"]
    # Through the command line, as the role runs it.
    config["guests"][1]["identity"] = "g2@2026-11-21"
    make_set(home(config, "c1", "g2") / day(0))
    run = subprocess.run([str(program), "--config", save(config, tmp_path), "identities"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert [c["name"] for c in json.loads(run.stdout)["conflicts"]] == ["g2"]


def test_a_reused_customer_id_gets_no_account_while_a_former_tree_is_there(config: dict[str, Any]) -> None:
    """A tree the configuration does not name (a former customer c1's guest) keeps a new c1 out of
    the folder until the daily job or the role's converge has erased it (it is unknown)."""
    for name in ("g1", "g2"):
        make_set(home(config, "c1", name) / day(0))
    assert identities(config)["conflicts"] == []
    make_set(home(config, "c1", "former") / day(9))
    config["customers"][0]["identity"] = "c1@2026-11-01"
    [refused] = identities(config)["conflicts"]
    assert refused["kind"] == "customer" and "former" in refused["message"]
    assert "gets no read-only FTP account" in refused["message"]
    assert Path(config["root"], "c1", ".vpsfleet", "identity").read_text() == "c1@2025-01-01\n"
    # The converge after it (or the daily job) erases the unknown tree: the folder is the new c1's.
    assert "former" in {e["guest"] for e in erase(config, TODAY)["erased"]}
    report = identities(config)
    assert report["conflicts"] == [] and report["adopted"][0].startswith("customer c1")
    assert Path(config["root"], "c1", ".vpsfleet", "identity").read_text() == "c1@2026-11-01\n"


# --- configuration strings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"guests": [{"guest": "../etc", "customer": "c1", "state": "active"}]}, "guest"),
        ({"guests": [{"guest": "g1\n", "customer": "c1", "state": "active"}]}, "guest"),  # `$` would pass it
        ({"guests": [{"guest": "g1", "customer": "c1", "state": "gone"}]}, "state"),
        ({"guests": [{"guest": "g1", "customer": "c1", "state": "terminated",
                      "terminated_on": "2026-02-30"}]}, "terminated_on"),
        ({"guests": [{"guest": "g1", "customer": "c1", "state": "terminated",
                      "terminated_on": fullwidth("2026-02-01")}]}, "terminated_on"),
        ({"guests": [{"guest": "g1", "customer": "c1", "state": "active",
                      "identity": "g1@x\nBcc: y"}]}, "identity"),
        ({"guests": [{"guest": "g1", "customer": "c1", "state": "active"}] * 2}, "twice"),
        ({"customers": [{"id": "c1 c2"}]}, "customers"),
        ({"operations_email": "ops@example.net\nBcc: evil@example.org"}, "operations_email"),
        ({"store": "store\nX-Header: 1"}, "store"),
        ({"retention_minimum_sets": 0}, "retention_minimum_sets"),
    ],
)  # fmt: skip
def test_a_configuration_with_unsafe_strings_is_refused_whole(
    config: dict[str, Any], tmp_path: Path, program: Path, change: dict[str, Any], message: str
) -> None:
    for name in ("g1", "g2"):
        make_set(home(config, "c1", name) / day(20))
    path = save({**config, **change}, tmp_path)
    for command in ("daily", "converge", "dead-man"):
        run = subprocess.run(
            [str(program), "--config", path, "--today", TODAY.isoformat(), command],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert run.returncode == 2 and message in run.stderr, run.stderr
    assert len(list(home(config, "c1", "g1").iterdir())) == 1  # nothing erased on it


def test_hash_passwords_refuses_a_salt_or_name_that_is_not_one() -> None:
    with pytest.raises(Refused):
        hash_passwords({"g1": {"password": "x", "salt": "-in /etc/shadow"}})
    with pytest.raises(Refused):
        hash_passwords({"g1\n": {"password": "x", "salt": "abc"}})
