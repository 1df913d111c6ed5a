"""The agent against pure-ftpd, a second real server (TLS required, chroot, file quota), so
that the client relies on no one server's behaviour (no server-side hash here)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

from tests.backup.conftest import NIGHT, Certs, PureFtpdStore, make_config, metrics, status
from vpsfleet_agents.backup.run import run
from vpsfleet_agents.backup.sets import published_sets


def config_for(tmp_path: Path, server: PureFtpdStore, certs: Certs,
               site: Path, **overrides: Any) -> Any:  # fmt: skip
    # pure-ftpd answers a wrong password only after a delay longer than our usual 3 s timeout.
    return make_config(tmp_path, server, certs, site, store_settings={"timeout_seconds": 30}, **overrides)


def test_publishes_then_quota_full_then_recovers(
    tmp_path: Path, pureftpd: PureFtpdStore, certs: Certs, site: Path
) -> None:
    config = config_for(tmp_path, pureftpd, certs, site)
    previous = NIGHT - dt.timedelta(days=1)
    outcome = run(config, now=previous, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    assert status(config)["server_hash"] is False  # sizes only: pure-ftpd offers no hash
    folder = pureftpd.home / "2026-11-22"
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True)
    assert check.returncode == 0, check.stdout
    # 6 files allowed (folders count), 4 used: tonight's set does not fit.
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "quota", outcome.message
    assert pureftpd.sets()[0] == "2026-11-22"
    assert published_sets(pureftpd.sets()) == ["2026-11-22"]
    assert metrics(config)['vpsfleet_backup_last_run_exit_reason{reason="quota"}'] == 1
    pureftpd.set_max_files(100)
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    assert pureftpd.sets() == ["2026-11-22", "2026-11-23"]


def test_wrong_password(tmp_path: Path, pureftpd: PureFtpdStore, certs: Certs, site: Path) -> None:
    bad = config_for(tmp_path, pureftpd, certs, site, password="not-it")
    outcome = run(bad, now=NIGHT, use_deadline=False)
    assert outcome.reason == "auth_failed", outcome.message
    assert pureftpd.sets() == []
