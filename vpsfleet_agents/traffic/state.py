"""The per-cycle state files: `<state_dir>/<YYYY-MM>.json`, one per cycle, replaced whole.

The previous cycles' files stay as the record of what was counted. A new cycle starts from the
newest earlier file (its last counters; nothing counted, no throttle). An unreadable or
malformed file stops the job with an error rather than being taken as empty: that would forget
what was counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vpsfleet_agents.atomic import write_atomic
from vpsfleet_agents.traffic.counting import Counter, Ledger, next_cycle
from vpsfleet_agents.traffic.cycle import CYCLE

FORMAT = 1


class StateError(Exception):
    pass


def cycle_file(state_dir: Path, cycle: str) -> Path:
    return state_dir / f"{cycle}.json"


def _ledger(data: Any, where: str) -> Ledger:
    if not isinstance(data, dict):
        raise StateError(f"{where}: not an object")
    counted = data.get("counted_bytes")
    if isinstance(counted, bool) or not isinstance(counted, int) or counted < 0:
        raise StateError(f"{where}.counted_bytes: not a byte count: {counted!r}")
    counter = data.get("counter")
    parsed: Counter | None = None
    if counter is not None:
        identity = counter.get("identity") if isinstance(counter, dict) else None
        value = counter.get("outbound_bytes") if isinstance(counter, dict) else None
        if (
            not isinstance(identity, str)
            or isinstance(value, bool)
            or not isinstance(value, int)
            or value < 0
        ):
            raise StateError(f"{where}.counter: not a counter reading: {counter!r}")
        parsed = Counter(identity, value)
    for key in ("throttled_at", "lifted_at"):
        if data.get(key) is not None and not isinstance(data.get(key), str):
            raise StateError(f"{where}.{key}: not a time: {data.get(key)!r}")
    if not isinstance(data.get("notified", False), bool):
        raise StateError(f"{where}.notified: not true or false")
    return Ledger(
        counted, parsed, data.get("throttled_at"), bool(data.get("notified", False)), data.get("lifted_at")
    )


def read(path: Path) -> dict[str, Ledger]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise StateError(f"{path}: unreadable state ({error}); fix or move it, nothing was changed") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("guests"), dict):
        raise StateError(f"{path}: not a state file of format {FORMAT}; fix or move it, nothing was changed")
    return {name: _ledger(item, f"{path}: guests.{name}") for name, item in data["guests"].items()}


def load(state_dir: Path, cycle: str) -> dict[str, Ledger]:
    """The ledgers of `cycle`: its own file, else a new cycle carried over from the newest earlier
    one, else empty."""
    own = cycle_file(state_dir, cycle)
    if own.exists():
        return read(own)
    earlier = sorted(p for p in state_dir.glob("*.json") if CYCLE.match(p.stem) and p.stem < cycle)
    if not earlier:
        return {}
    return {name: next_cycle(ledger) for name, ledger in read(earlier[-1]).items()}


def plain(ledger: Ledger) -> dict[str, Any]:
    counter = ledger.counter
    return {
        "counted_bytes": ledger.counted_bytes,
        "counter": None
        if counter is None
        else {"identity": counter.identity, "outbound_bytes": counter.outbound_bytes},
        "throttled_at": ledger.throttled_at,
        "notified": ledger.notified,
        "lifted_at": ledger.lifted_at,
    }


def save(state_dir: Path, cycle: str, ledgers: dict[str, Ledger]) -> None:
    """Replace the cycle's file whole (a crash leaves the old one or the new one)."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    data = {
        "format": FORMAT,
        "cycle": cycle,
        "guests": {name: plain(ledgers[name]) for name in sorted(ledgers)},
    }
    write_atomic(cycle_file(state_dir, cycle), json.dumps(data, indent=2, sort_keys=True) + "\n", 0o640)
