"""Benchmark of the store under a night's load (issue 15, part 5): K guests publishing at once to
one ProFTPD over TLS on loopback, with the store role's session limit (MaxClients, its message
"Too many sessions, try again later"), each guest a real agent (the built `vpsfleet-backup`, the
night's run with retries) with its own account. One round per K (default 1, 8, the limit, one
past it, and twice the limit, where sessions are refused). Per round: bytes on the store, wall
clock, the store's throughput, the store's CPU seconds (the ProFTPD daemon and its session
children, from /proc), CPU per Gbit/s, the agents' CPU, the peak of concurrent sessions, the
sessions refused at the limit and the agents' retries, and every set checked (agent exit 0, the
server's SHA-256 compared by the agent, `sha256sum -c` in the store's folder). Method and
figures: docs/benchmarks-store.md.

    .venv/bin/python benchmarks/store_load.py [--guests 1 8 16 17 32] [--limit 16] [--set-mb 40]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.backup_agent import load_average, make_site
from tests.backup.conftest import AGENT_PATH, make_cert
from tests.backup.test_store_load import LoadedStore, agent_config, hhmm
from vpsfleet import agent_build

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def store_cpu_seconds(store: LoadedStore) -> float:
    """The daemon's CPU with its reaped session children's, plus the live sessions' own."""
    if store.proc is None:
        return 0.0
    total = 0
    for pid in store.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime (fields 14, 15), cutime, cstime (16, 17) for the daemon, which reaps them.
        own = int(fields[11]) + int(fields[12])
        total += own + (int(fields[13]) + int(fields[14]) if pid == store.proc.pid else 0)
    return total / CLOCK_TICKS


class SessionSampler:
    """The peak number of live session processes (the daemon's children), sampled every 50 ms."""

    def __init__(self, store: LoadedStore) -> None:
        self.store = store
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, len(self.store.pids()) - 1)
            time.sleep(0.05)

    def __enter__(self) -> SessionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_round(base: Path, store: LoadedStore, cert: Path, site: Path, guests: int) -> dict[str, Any]:
    """`guests` agents started at once, each its night's run; their sets checked and removed."""
    now = dt.datetime.now().astimezone()
    window = (hhmm(now - dt.timedelta(minutes=1)), hhmm(now + dt.timedelta(minutes=30)))
    retry = {"attempts": 30, "backoff_seconds": 1, "backoff_max_seconds": 4}
    configs = []
    for account in store.accounts[:guests]:
        folder = base / f"k{guests}" / account[1]
        folder.mkdir(parents=True)
        configs.append((account, folder, agent_config(folder, store, cert, account, site, window, retry, {})))
    refused_before, dropped_before = store.refusals(), store.dropped()
    cpu_before = store_cpu_seconds(store)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    with SessionSampler(store) as sampler:
        agents = [
            subprocess.Popen(
                [str(AGENT_PATH), "--config", str(c)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for *_, c in configs
        ]
        outputs = [agent.communicate() for agent in agents]
    wall = time.monotonic() - began
    time.sleep(0.5)  # let the daemon reap the last sessions: their CPU goes to its cutime
    store_cpu = store_cpu_seconds(store) - cpu_before
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    agents_cpu = (children.ru_utime - children_before.ru_utime) + (
        children.ru_stime - children_before.ru_stime
    )
    why: Counter[str] = Counter()
    total = 0
    checked = 0
    retried = 0
    attempts = 0
    rates = []
    spans = []
    for (account, folder, _), agent, (_, err) in zip(configs, agents, outputs, strict=True):
        status = json.loads((folder / "state" / "status.json").read_text())
        tries = status.get("night_attempts") or []
        attempts += len(tries)
        for failed in tries[:-1]:
            why[f"{failed['reason']}: {short(failed['message'])}"] += 1
        retried += len(tries) > 1
        home = store.home_of(account[1])
        good = agent.returncode == 0 and status.get("server_hash") is True
        nights = [p for p in home.iterdir() if not p.name.startswith(".")]
        good = good and len(nights) == 1  # tonight's set, nothing else (.partial, .superseded)
        for night in nights:
            check = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=night, check=False)
            good = good and check.returncode == 0 and night.name == status["last_success"]["set"]
            size = sum(p.stat().st_size for p in night.rglob("*") if p.is_file())
            total += size
            manifest = json.loads((night / "MANIFEST.json").read_text())
            producing = sum(float(entry.get("seconds", 0)) for entry in manifest["files"])
            publishing = float(status["duration_seconds"]) - producing
            end = float(status["last_success"]["finished_ts"])
            spans.append((end - publishing, end))
            if publishing > 0:
                rates.append(size * 8 / publishing / 1e9)
            shutil.rmtree(night)
        if good:
            checked += 1
        else:
            print(f"{account[1]}: exit {agent.returncode}: {err[-600:]}", file=sys.stderr)
    upload_span = max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0
    return {
        "guests": guests,
        "limit": store.max_clients,
        "bytes": total,
        "wall_s": round(wall, 2),
        "upload_span_s": round(upload_span, 2),
        "store_gbit_s": round(total * 8 / upload_span / 1e9, 3) if upload_span else 0.0,
        "per_connection_gbit_s": round(sorted(rates)[len(rates) // 2], 3) if rates else 0.0,
        "store_cpu_s": round(store_cpu, 2),
        "agents_cpu_s": round(agents_cpu, 2),
        "peak_sessions": sampler.peak,
        "refused": store.refusals() - refused_before,
        "dropped": store.dropped() - dropped_before,
        "failed_attempts": dict(why.most_common()),
        "retried_guests": retried,
        "attempts": attempts,
        "checked": f"{checked}/{guests}",
    }


def short(message: str) -> str:
    """A failed attempt's message without what differs from one guest to the next."""
    replies = re.findall(r"\b[45][0-9][0-9] [^|)]*", message)
    return replies[-1].strip() if replies else re.sub(r"[0-9]+", "N", message)[:100]


def table(rows: list[dict[str, Any]]) -> list[str]:
    head = (
        f"{'K':>3} {'limit':>5} {'MB':>7} {'wall s':>7} {'upload s':>8} {'store Gbit/s':>12}"
        f" {'per conn':>8} {'store CPU s':>11} {'cores per Gbit/s':>16} {'agents CPU s':>12}"
        f" {'peak':>4} {'refused':>7} {'dropped':>7} {'retried':>7} {'checked':>7}"
    )
    lines = [head]
    for r in rows:
        gbit = r["store_gbit_s"]
        # CPU seconds per Gbit received: the store's cores that 1 Gbit/s of uploads keeps busy.
        per_gbit = r["store_cpu_s"] / (r["bytes"] * 8 / 1e9) if r["bytes"] else 0.0
        lines.append(
            f"{r['guests']:>3} {r['limit']:>5} {r['bytes'] / 1e6:>7.0f} {r['wall_s']:>7.1f}"
            f" {r['upload_span_s']:>8.1f} {gbit:>12.2f} {r['per_connection_gbit_s']:>8.2f}"
            f" {r['store_cpu_s']:>11.1f} {per_gbit:>16.2f} {r['agents_cpu_s']:>12.1f}"
            f" {r['peak_sessions']:>4} {r['refused']:>7} {r['dropped']:>7}"
            f" {r['retried_guests']:>7} {r['checked']:>7}"
        )
    return lines


def uptime() -> str:
    out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    return out or f"load average: {load_average()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--guests", type=int, nargs="+", help="K for each round (default: 1 8 LIMIT LIMIT+1 2*LIMIT)"
    )
    parser.add_argument("--limit", type=int, default=16,
                        help="the store's MaxClients (the role's default: 8 planned + 8 extra)")  # fmt: skip
    parser.add_argument("--set-mb", type=int, default=40, help="each guest's site, in MB")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    rounds: list[int] = args.guests or [1, 8, args.limit, args.limit + 1, 2 * args.limit]
    agent_build.build()  # the agent as the role installs it, from vpsfleet_agents/
    base = Path(tempfile.mkdtemp(prefix="vpsfleet-store-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    store: LoadedStore | None = None
    try:
        site = base / "src" / "www"
        site.mkdir(parents=True)
        files = make_site(site, args.set_mb, random.Random(15))
        print(f"each guest's site: {files} files, {args.set_mb} MB (60 % incompressible)")
        (base / "certs").mkdir()
        cert, key = make_cert(base / "certs", "localhost", "DNS:localhost,IP:127.0.0.1")
        store = LoadedStore(base / "proftpd", cert, key, guests=max(rounds), max_clients=args.limit)
        store.start()
        print(f"before: {uptime()}")
        rows = [run_round(base / "runs", store, cert, site, k) for k in rounds]
        print(f"after:  {uptime()}")
        for line in table(rows):
            print(line)
        for row in rows:
            for what, count in row["failed_attempts"].items():
                print(f"K={row['guests']}: {count} failed attempt(s): {what}")
        if args.json:
            print(json.dumps(rows, indent=2))
        return 0 if all(r["checked"] == f"{r['guests']}/{r['guests']}" for r in rows) else 1
    finally:
        if store is not None:
            store.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
