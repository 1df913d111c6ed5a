"""vpsfleet-traffic: the monthly outbound quota of each guest on this host (M8).

    vpsfleet-traffic [--config FILE] run           # the timer's run: count, throttle, restore
    vpsfleet-traffic [--config FILE] lift DOMAIN   # lift a throttle by hand until the cycle ends
    vpsfleet-traffic [--config FILE] status        # this cycle's state, as JSON

Prints one JSON object. Exit 0; 1 when a guest could not be read or changed, or a notice not
sent (the others were handled; the next run retries); 2 on a bad configuration, state file or
argument (nothing was changed).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from vpsfleet_agents import mail, textfile
from vpsfleet_agents.config_file import bad_configuration
from vpsfleet_agents.traffic import metrics, state
from vpsfleet_agents.traffic.config import Config, ConfigError, load
from vpsfleet_agents.traffic.counting import Ledger
from vpsfleet_agents.traffic.cycle import cycle_end, cycle_of
from vpsfleet_agents.traffic.run import Outcome, Send, run_guests

DEFAULT_CONFIG = "/etc/vpsfleet/traffic.json"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vpsfleet-traffic", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=Path(os.environ.get("VPSFLEET_TRAFFIC_CONFIG", DEFAULT_CONFIG))
    )
    # Tests move the clock to a cycle's end; never needed in service.
    parser.add_argument("--now", type=dt.datetime.fromisoformat, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="count, throttle at the quota, restore at the cycle's end")
    lift = commands.add_parser("lift", help="lift a guest's throttle by hand until the cycle ends")
    lift.add_argument("domain")
    commands.add_parser("status", help="print this cycle's state")
    args = parser.parse_args(argv)
    if args.now is not None and args.now.tzinfo is None:
        parser.error("--now needs a time zone")
    return args


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """One run at a time (the timer and an operator's `lift`)."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    with (state_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def sender(config: Config) -> Send:
    def send(message: EmailMessage) -> str | None:
        try:
            handed = mail.send(message, config.sendmail)
        except OSError as error:
            return str(error)
        return None if handed.ok else f"sendmail exit {handed.returncode}: {handed.stderr.strip()}"

    return send


class Unreachable(Exception):
    """libvirt cannot be reached (no daemon, no Python module): nothing was read or changed."""


def run_all(config: Config, ledgers: dict[str, Ledger], cycle: str, now: dt.datetime) -> list[Outcome]:
    try:
        import libvirt
    except ImportError:
        raise Unreachable("the libvirt Python module is missing: install python3-libvirt") from None

    end = cycle_end(cycle, config.time_zone)
    boot_id = BOOT_ID.read_text().strip()
    try:
        conn = libvirt.open(config.libvirt_uri)
    except libvirt.libvirtError as error:
        raise Unreachable(f"libvirt {config.libvirt_uri}: {error}") from None
    try:
        outcomes = run_guests(
            conn,
            config,
            ledgers,
            boot_id,
            now,
            end,
            sender(config),
            lambda current: state.save(config.state_dir, cycle, current),
        )
    finally:
        conn.close()
    if config.metrics_file is not None:
        textfile.write(config.metrics_file, metrics.render([o.metrics() for o in outcomes], now, end))
    return outcomes


def report(cycle: str, outcomes: list[Outcome]) -> dict[str, Any]:
    return {
        "cycle": cycle,
        "guests": {
            o.guest: {
                "counted_bytes": o.counted_bytes,
                "quota_bytes": o.quota_bytes,
                "throttled": o.throttled,
                "changes": o.changes,
                "errors": o.errors,
            }
            for o in outcomes
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    try:
        config = load(args.config)
    except ConfigError as error:
        return bad_configuration(error)
    now = args.now or dt.datetime.now(dt.UTC)
    cycle = cycle_of(now, config.time_zone)
    with locked(config.state_dir):
        try:
            ledgers = state.load(config.state_dir, cycle)
        except state.StateError as error:
            print(json.dumps({"error": str(error)}))
            return 2
        if args.command == "status":
            print(
                json.dumps(
                    {"cycle": cycle, "guests": {n: state.plain(g) for n, g in sorted(ledgers.items())}}
                )
            )
            return 0
        if args.command == "lift":
            if args.domain not in {g.domain for g in config.guests}:
                print(json.dumps({"error": f"{args.domain}: not a guest of {args.config}"}))
                return 2
            lifted = replace(ledgers.get(args.domain, Ledger()), lifted_at=now.isoformat(timespec="seconds"))
            ledgers[args.domain] = lifted
            state.save(config.state_dir, cycle, ledgers)
        try:
            outcomes = run_all(config, ledgers, cycle, now)
        except Unreachable as error:
            print(json.dumps({"error": str(error)}))
            return 1
    print(json.dumps(report(cycle, outcomes), sort_keys=True))
    return 1 if any(o.errors for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
