"""What time alone changes: the fleet file as it is, judged at the last nightly run and now.

SMTP blocks whose `until` passed and mitigations whose end passed since the last run are
changes as a merge's are (deploy_changes.changes_between of one fleet at two instants); the
steps are the same: `pulumi up` redefines the guests' filters, then the notices the plan names
(none for ends, today). The instant of the last successful run is kept in the state directory
(`nightly.json`), so a missed night is caught up by the next one, and a re-run finds nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from vpsfleet.notices.record import write_atomic

FILE = "nightly.json"
# The first run, with no record and no --since, looks back this far.
FIRST_LOOKBACK = dt.timedelta(days=1)


class NightlyStateUnreadable(Exception):
    pass


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def last_run(state_dir: Path) -> dt.datetime | None:
    path = state_dir / FILE
    if not path.exists():
        return None
    try:
        return _utc(dt.datetime.fromisoformat(json.loads(path.read_text())["last_run"]))
    except (ValueError, KeyError, TypeError) as err:
        raise NightlyStateUnreadable(f"{path}: not a nightly record ({err}); fix it, or pass "
                                     "--since") from None


def since_for(state_dir: Path, since: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """--since, else the last run, else a day before now."""
    if since is not None:
        return since
    return last_run(state_dir) or now - FIRST_LOOKBACK


def record_run(state_dir: Path, now: dt.datetime) -> None:
    stamp = now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    write_atomic(state_dir / FILE, json.dumps({"last_run": stamp}, indent=2) + "\n")
