"""The agent against ProFTPD, the store's server (explicit TLS required, `DefaultRoot ~`,
HiddenStores, server-side SHA-256): the client must not rely on pyftpdlib's behaviour."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.backup.conftest import NIGHT, Certs, ProftpdStore, make_config, metrics, status
from vpsfleet_agents.backup.run import run
from vpsfleet_agents.backup.sets import published_sets


def config_for(tmp_path: Path, server: ProftpdStore, certs: Certs,
               site: Path, **overrides: Any) -> Any:  # fmt: skip
    return make_config(tmp_path, server, certs, site, **overrides)


def test_publishes_a_set_the_server_hashed(
    tmp_path: Path, proftpd: ProftpdStore, certs: Certs, site: Path
) -> None:
    config = config_for(tmp_path, proftpd, certs, site, retention_days=2, retention_minimum_sets=1)
    for night in (NIGHT - dt.timedelta(days=3), NIGHT - dt.timedelta(days=1), NIGHT):
        outcome = run(config, now=night, use_deadline=False)
        assert outcome.reason == "ok", outcome.message
    assert proftpd.sets() == ["2026-11-22", "2026-11-23"]  # 2026-11-20 expired
    assert status(config)["server_hash"] is True  # mod_digest answered and matched
    folder = proftpd.home / "2026-11-23"
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True)
    assert check.returncode == 0, check.stdout
    assert not [p for p in folder.rglob(".in.*")]  # no HiddenStores leftovers


def test_wrong_password_and_store_down(
    tmp_path: Path, proftpd: ProftpdStore, certs: Certs, site: Path
) -> None:
    config = config_for(tmp_path, proftpd, certs, site)
    assert run(config, now=NIGHT - dt.timedelta(days=1), use_deadline=False).reason == "ok"
    (tmp_path / "bad").mkdir()
    bad = config_for(tmp_path / "bad", proftpd, certs, site, password="not-it")
    outcome = run(bad, now=NIGHT, use_deadline=False)
    assert outcome.reason == "auth_failed", outcome.message
    proftpd.stop()
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "store_unreachable", outcome.message
    assert metrics(config)["vpsfleet_backup_last_run_success"] == 0
    proftpd.start()
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"
    assert proftpd.sets() == ["2026-11-22", "2026-11-23"]


def test_a_guest_clock_that_jumps_forward_deletes_no_set(
    tmp_path: Path, proftpd: ProftpdStore, certs: Certs, site: Path
) -> None:
    """Fourteen good nights, then the guest's clock jumps a year ahead (issue 10, #9): the run
    still publishes, but retention judges from the newest set that was there, so every set
    stays; on the next night (clock still wrong) no fewer than the minimum of sets remain."""
    config = config_for(tmp_path, proftpd, certs, site, retention_days=15, retention_minimum_sets=5
    )  # fmt: skip
    nights = [(NIGHT - dt.timedelta(days=d)).date().isoformat() for d in range(14, 0, -1)]
    for night in nights:  # what fourteen good nights left (the tree as ProFTPD's account owns it)
        (proftpd.home / night).mkdir()
        (proftpd.home / night / "SHA256SUMS").write_text("")
        for path in (proftpd.home / night, proftpd.home / night / "SHA256SUMS"):
            os.chown(path, 65534, 65534)
    jumped = NIGHT + dt.timedelta(days=365)
    outcome = run(config, now=jumped, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    assert proftpd.sets() == [*nights, jumped.date().isoformat()]
    assert status(config)["expired"] == []
    assert status(config)["retention_judged_on"] == NIGHT.date().isoformat()
    following = jumped + dt.timedelta(days=1)
    outcome = run(config, now=following, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    assert len(published_sets(proftpd.sets())) == 5  # the minimum, never fewer
    assert proftpd.sets()[-3:] == [nights[-1], jumped.date().isoformat(), following.date().isoformat()]
