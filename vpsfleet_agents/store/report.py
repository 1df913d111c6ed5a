"""The daily job's report: its metrics, and one mail to operations when it met something to act
on (not for garbage alone)."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Sequence
from typing import Any

from vpsfleet_agents.store.alerts import GUEST_LABELS, send_mail, store_name, write_metrics
from vpsfleet_agents.store.tree import is_folder, meta_folder
from vpsfleet_agents.textfile import Gauges

METRICS = "vpsfleet_backup_store_daily.prom"


def daily_report(
    config: dict[str, Any], today: dt.date, problems: Sequence[dict[str, Any]], dry_run: bool
) -> bool:
    """Metrics of the daily job (per guest: unexpected entries, quarantined sets) and one mail to
    operations when it met something to act on (not for garbage alone). True if it alerted."""
    gauges = Gauges()
    unexpected = gauges.family(
        "vpsfleet_backup_store_unexpected_entries",
        "Entries of a guest's folder that are no set",
        GUEST_LABELS,
    )
    quarantined = gauges.family(
        "vpsfleet_backup_store_quarantined_sets",
        "Sets of a guest kept aside (dated in the future)",
        GUEST_LABELS,
    )
    for guest in config["guests"]:
        if guest.get("state") == "terminated":
            continue
        labels = [guest["customer"], guest["guest"]]
        garbage = sum(
            len(p["entries"]) for p in problems if p["kind"] == "garbage" and p["guest"] == guest["guest"]
        )
        held = meta_folder(config, guest["customer"]) / "quarantine" / guest["guest"]
        kept = len(os.listdir(held)) if is_folder(held) else 0
        unexpected.add_metric(labels, garbage)
        quarantined.add_metric(labels, kept)
    alerts = [p for p in problems if p["kind"] != "garbage"]
    gauges.single(
        "vpsfleet_backup_store_daily_problems", "Problems the last daily job alerted for", len(alerts)
    )
    gauges.single(
        "vpsfleet_backup_store_daily_timestamp_seconds", "When the daily job last ran", round(time.time())
    )
    if dry_run:
        return bool(alerts)
    write_metrics(config, METRICS, gauges)
    if not alerts:
        return False
    store = store_name(config)
    rows = "\n".join(f"  [{p['kind']}] {p['guest'] or p['customer']}: {p['problem']}" for p in problems)
    send_mail(
        config,
        f"[vpsfleet] backup store {store}: the daily job of {today.isoformat()} found "
        f"{len(alerts)} problem(s)",
        f"The daily job of backup store {store} (erasure, retention, quota) found:\n\n{rows}\n\n"
        "Every other guest was processed. What to do: docs/backup-store.md, 'When the daily job\n"
        "alerts' (future-dated sets, a suspect clock, refused erasures, unreadable trees).\n",
        "backup-store-daily",
    )
    return True
