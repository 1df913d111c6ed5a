"""The lab's monitor at work, for `make lab` (issue 14; M16, M25-M27).

    python -m vpsfleet.lab_monitor demo FLEET --prometheus URL --sink ADDRESS --ssh-key KEY \
        --known-hosts FILE --out DIR [--guest NAME] [--wait SECONDS]

Run inside the lab's network namespace (scripts/lab.sh), with Prometheus forwarded from the
monitor's loopback. In order:
1. the targets: every scrape target up, and a PING probe answering for every active guest and
   delivered dedicated server of the fleet;
2. one outage: the guest's address is black-holed in the lab's namespace (the router between the
   guests' pool and the monitor's: a cut cable, nothing done on the guest), until the ticket mail
   `FIRING ProbeDown` reaches the mail sink; then the route goes and the `RESOLVED` mail follows.
   The route is removed whatever happens;
3. the month's SLA report and chart from the lab's Prometheus (`vpsfleet sla report`), written
   to DIR, and the guest's row printed.

The mails are read on the sink over SSH with the provider's key, as an operator would. Exit 1
when a step does not happen in time (the message says which).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vpsfleet.fleet import Fleet
from vpsfleet.prometheus import Labels, Prometheus, PrometheusError, PrometheusUnreachable
from vpsfleet.schema import GuestState
from vpsfleet.sla_report import zone_of

MAILDIR = "/var/mail/sink/new"
TICKET_HEADER = "X-Vpsfleet-Ticket"
STATUS_HEADER = "X-Vpsfleet-Status"


class DemoFailed(Exception):
    """A step of the demo that did not happen (said to the operator, exit 1)."""


@dataclass(frozen=True)
class Targets:
    up: tuple[str, ...]  # "job machine" of every target that answers
    down: tuple[str, ...]
    unprobed: tuple[str, ...]  # fleet machines with no answering PING probe


def machine_of(labels: Labels) -> str:
    return labels.get("guest") or labels.get("server") or labels.get("instance", "?")


def probed_machines(fleet: Fleet) -> list[tuple[str, str]]:
    """(name, address) of what the monitor must PING: active guests, delivered servers (M26)."""
    machines = [(g.name, str(g.ipv4)) for g in fleet.live_guests()
                if g.ipv4 is not None and g.state is GuestState.ACTIVE]
    machines += [(s.name, str(s.ipv4)) for s in fleet.dedicated_servers
                 if s.ipv4 is not None and s.delivered_on is not None]
    return sorted(machines)


def targets(fleet: Fleet, up: Iterable[tuple[Labels, float]],
            probes: Iterable[tuple[Labels, float]]) -> Targets:
    """What `up` and `probe_success{job="sla_icmp"}` say, against the fleet."""
    answered: list[str] = []
    silent: list[str] = []
    for labels, value in up:
        (answered if value == 1 else silent).append(f"{labels.get('job', '?')} {machine_of(labels)}")
    probing = {machine_of(labels) for labels, value in probes if value == 1}
    missing = [name for name, _address in probed_machines(fleet) if name not in probing]
    return Targets(tuple(sorted(answered)), tuple(sorted(silent)), tuple(missing))


@dataclass(frozen=True)
class Mail:
    file: str
    ticket: str
    status: str


def parse_headers(listing: str) -> list[Mail]:
    """`grep -H` of the two headers over the sink's files, one line each: FILE:Header: value."""
    found: dict[str, dict[str, str]] = {}
    for line in listing.splitlines():
        path, sep, header = line.partition(":")
        name, sep2, value = header.partition(":")
        if not sep or not sep2:
            continue
        found.setdefault(path, {})[name.strip()] = value.strip()
    return [Mail(path, h.get(TICKET_HEADER, ""), h.get(STATUS_HEADER, ""))
            for path, h in sorted(found.items())]


def wait_for(what: str, seconds: float, probe: Callable[[], str | None], step: float = 5.0) -> str:
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise DemoFailed(f"{what}: not seen within {seconds:.0f} s")
        time.sleep(step)


class Lab:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def ssh(self, address: str, command: str) -> str:
        done = subprocess.run(
            ["ssh", "-i", str(self.args.ssh_key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
             "-o", f"UserKnownHostsFile={self.args.known_hosts}", "-o", "ConnectTimeout=10",
             f"root@{address}", command],
            capture_output=True, text=True, timeout=60, check=False)
        if done.returncode not in (0, 1):  # grep's 1: nothing matched
            raise DemoFailed(f"ssh {address}: {done.stderr.strip() or done.returncode}")
        return done.stdout

    def mails(self) -> list[Mail]:
        listing = self.ssh(self.args.sink, f"grep -H -e '^{TICKET_HEADER}:' -e '^{STATUS_HEADER}:' "
                                           f"{MAILDIR}/* 2>/dev/null")
        return parse_headers(listing)


def ip_route(verb: str, address: str) -> None:
    subprocess.run(["ip", "route", verb, "blackhole", f"{address}/32"], check=True,
                   capture_output=True, text=True)


def clock() -> str:
    return dt.datetime.now(dt.UTC).strftime("%H:%M:%S UTC")


def demo(fleet: Fleet, args: argparse.Namespace, say: Callable[[str], None]) -> None:
    prometheus = Prometheus(args.prometheus, timeout=30)

    def all_up() -> str | None:
        now = int(time.time() * 1000)
        try:
            seen = targets(fleet, prometheus.vector("up", now),
                           prometheus.vector('probe_success{job="sla_icmp"}', now))
        except PrometheusUnreachable:
            # A query through the new tunnel timed out once on a busy machine (make lab): asked
            # again until the wait is over, like targets not up yet.
            return None
        return None if seen.down or seen.unprobed else f"{len(seen.up)} targets up"

    try:
        wait_for("every target up and every machine answering PING", args.wait, all_up)
        now = int(time.time() * 1000)
        seen = targets(fleet, prometheus.vector("up", now),
                       prometheus.vector('probe_success{job="sla_icmp"}', now))
    except PrometheusError as err:
        raise DemoFailed(str(err)) from None
    except DemoFailed:
        now = int(time.time() * 1000)
        seen = targets(fleet, prometheus.vector("up", now),
                       prometheus.vector('probe_success{job="sla_icmp"}', now))
        raise DemoFailed(f"targets down: {', '.join(seen.down) or '-'}; "
                         f"no PING answer: {', '.join(seen.unprobed) or '-'}") from None
    say(f"  targets: {len(seen.up)} up, none down: {', '.join(seen.up)}")

    addresses = dict(probed_machines(fleet))
    guest = args.guest or next(name for name, _a in probed_machines(fleet))
    if guest not in addresses:
        raise DemoFailed(f"{guest} is not a machine the monitor PINGs")
    lab = Lab(args)
    key = f"ProbeDown/guest={guest}"
    before = {m.file for m in lab.mails()}

    def ticket(status: str) -> Callable[[], str | None]:
        def find() -> str | None:
            new = [m for m in lab.mails() if m.file not in before and m.ticket == key and m.status == status]
            return new[0].file if new else None
        return find

    ip_route("add", addresses[guest])
    try:
        say(f"  {clock()}: {guest} ({addresses[guest]}) cut off (a black-hole route in the "
                     "lab's namespace)")
        fired = wait_for(f"the FIRING ticket of {key}", args.wait, ticket("firing"))
        say(f"  {clock()}: ticket FIRING {key} to {fleet.provider.support_email}: "
                     f"mailsink:{fired}")
    finally:
        ip_route("del", addresses[guest])
    say(f"  {clock()}: {guest} back on the network")
    resolved = wait_for(f"the RESOLVED ticket of {key}", args.wait, ticket("resolved"))
    say(f"  {clock()}: ticket RESOLVED {key}: mailsink:{resolved}")
    for line in report(fleet, args, guest):
        say(line)


def report(fleet: Fleet, args: argparse.Namespace, guest: str) -> list[str]:
    """This month's SLA report and chart from the lab's Prometheus, through the command itself."""
    zone = zone_of(fleet)
    month = dt.datetime.now(zone).strftime("%Y-%m")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    table, chart = out / f"sla-{month}.txt", out / f"sla-{month}.svg"
    done = subprocess.run(
        [sys.executable, "-m", "vpsfleet.cli", "sla", "report", str(args.fleet), "--month", month,
         "--prometheus", args.prometheus, "--svg", str(chart)],
        capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise DemoFailed(f"vpsfleet sla report: {done.stderr.strip()}")
    table.write_text(done.stdout, encoding="utf-8")
    row = [line for line in done.stdout.splitlines() if line.startswith(f"{guest} ")]
    return [f"  SLA report for {month}: {table}; chart: {chart}",
            *(f"    {line}" for line in row)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpsfleet.lab_monitor")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="targets, one alert fired and resolved, the month's report")
    p.add_argument("fleet", type=Path)
    p.add_argument("--prometheus", required=True, metavar="URL")
    p.add_argument("--sink", required=True, metavar="ADDRESS", help="the mail sink's address")
    p.add_argument("--ssh-key", required=True, type=Path)
    p.add_argument("--known-hosts", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="where the report and chart go")
    p.add_argument("--guest", help="the machine to cut off (default: the first the monitor PINGs)")
    p.add_argument("--wait", type=float, default=300.0, help="seconds allowed for each step")
    args = parser.parse_args(argv)
    from vpsfleet.loader import FleetInvalid, load_fleet

    try:
        fleet = load_fleet(args.fleet)
        demo(fleet, args, lambda line: print(line, flush=True))
    except (FleetInvalid, DemoFailed) as err:
        print(f"lab monitor demo: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
