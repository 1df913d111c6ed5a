"""Benchmark of the backup agent (issues 6 and 15): a generated site of about 1 GB plus a few
hundred MB of database dump, backed up to a private ProFTPD over TLS on loopback, in one run with
each compression (zstd, the fleet's default, then gzip) and with duplicity to the same server and
data as the reference when it is installed. Prints wall time, CPU time (the process tree's
user+system), bytes on the store, the ratios against duplicity and the load average before and
after. Method: docs/benchmarks-backup.md.

    .venv/bin/python benchmarks/backup_agent.py [--site-mb 1000] [--dump-mb 300]
        [--compression zstd --compression gzip] [--no-reference] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vpsfleet import agent_build

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.backup.conftest import (
    AGENT_PATH,
    PASSWORD,
    Certs,
    ProftpdStore,
    make_cert,
)

WORDS = [
    "le",
    "la",
    "les",
    "un",
    "une",
    "des",
    "site",
    "page",
    "produit",
    "commande",
    "client",
    "panier",
    "prix",
    "stock",
    "livraison",
    "the",
    "and",
    "of",
    "to",
    "in",
    "is",
    "for",
    "on",
    "with",
    "by",
    "from",
    "at",
    "as",
    "be",
    "this",
    "that",
    "are",
    "or",
    "an",
    "it",
    "not",
]


def text_blob(rng: random.Random, size: int) -> bytes:
    words = rng.choices(WORDS, k=size // 5 + 1)
    return " ".join(words).encode()[:size]


def make_site(root: Path, total_mb: int, rng: random.Random) -> int:
    """Thousands of small text files (PHP, HTML), some large text (logs, CSV) and
    incompressible media (images, archives): 10 % / 30 % / 60 % of the bytes."""
    budget = total_mb * 1_000_000
    small, large, media = budget // 10, budget * 3 // 10, budget * 6 // 10
    written = 0
    count = 0
    while written < small:
        folder = root / f"site{count % 7}" / f"dir{count % 53}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(2_000, 40_000)
        (folder / f"page{count}.php").write_bytes(text_blob(rng, size))
        written += size
        count += 1
    for index in range(max(1, large // 5_000_000)):
        folder = root / "logs"
        folder.mkdir(exist_ok=True)
        (folder / f"access{index}.log").write_bytes(text_blob(rng, 5_000_000))
        written += 5_000_000
        count += 1
    for index in range(max(1, media // 8_000_000)):
        folder = root / "uploads" / f"{2020 + index % 6}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"photo{index}.jpg").write_bytes(os.urandom(8_000_000))
        written += 8_000_000
        count += 1
    return count


def make_dump(path: Path, total_mb: int, rng: random.Random) -> None:
    """A mariadb-dump-like SQL text with its trailer, what the fake dump tool prints."""
    with open(path, "wb") as out:
        out.write(b"-- MariaDB dump 10.19\n\nCREATE TABLE `orders` (id int, customer text);\n")
        size = 0
        row = 0
        while size < total_mb * 1_000_000:
            values = ",".join(
                f"({row + i},'{' '.join(rng.choices(WORDS, k=12))}',{rng.random():.6f})" for i in range(200)
            )
            line = f"INSERT INTO `orders` VALUES {values};\n".encode()
            out.write(line)
            size += len(line)
            row += 200
        out.write(b"-- Dump completed on 2026-11-23  1:00:00\n")


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measured(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of the whole process tree, exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
    return wall, cpu, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site-mb", type=int, default=1000)
    parser.add_argument("--dump-mb", type=int, default=300)
    parser.add_argument("--compression", choices=["zstd", "gzip"], action="append",
                        help="repeat for several; default: zstd then gzip")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--no-reference", action="store_true", help="skip duplicity")
    args = parser.parse_args()
    compressions: list[str] = args.compression or ["zstd", "gzip"]
    agent_build.build()  # the agent as the role installs it, from vpsfleet_agents/
    rng = random.Random(6)  # the same data every time
    base = Path(tempfile.mkdtemp(prefix="vpsfleet-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        source = base / "src"
        (source / "www").mkdir(parents=True)
        began = time.monotonic()
        files = make_site(source / "www", args.site_mb, rng)
        make_dump(source / "dump.sql", args.dump_mb, rng)
        source_bytes = tree_bytes(source)
        print(f"data: {files} files, {source_bytes / 1e6:.0f} MB "
              f"(generated in {time.monotonic() - began:.0f} s)")  # fmt: skip
        certs_dir = base / "certs"
        certs_dir.mkdir()
        cert, key = make_cert(certs_dir, "localhost", "DNS:localhost,IP:127.0.0.1")
        store = ProftpdStore(base / "proftpd", cert, key)
        store.start()
        print(f"load average at the start: {load_average()}")
        try:
            results: dict[str, dict[str, float | int | bool]] = {}
            for compression in compressions:
                results[f"ours, {compression}"] = run_ours(
                    base / compression, source, store, Certs(cert, key, cert, key), compression
                )
            if args.no_reference:
                pass
            elif shutil.which("duplicity"):
                results["duplicity"] = run_duplicity(base, source, store, cert)
            else:
                print("duplicity: not installed (apt-get install duplicity): reference skipped")
        finally:
            store.stop()
        print(f"load average at the end: {load_average()}")
        print(json.dumps(results, indent=2))
        for line in ratios(results, compressions[0]):
            print(line)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as `uptime` prints them."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def ratios(results: dict[str, dict[str, float | int | bool]], default: str) -> list[str]:
    """duplicity's wall and CPU time over each of ours (the higher, the faster ours is)."""
    reference = results.get("duplicity")
    if not reference or not reference["ok"]:
        return []
    lines = []
    for name, ours in results.items():
        if name == "duplicity" or not ours["ok"] or not ours["wall_s"] or not ours["cpu_s"]:
            continue
        wall = float(reference["wall_s"]) / float(ours["wall_s"])
        cpu = float(reference["cpu_s"]) / float(ours["cpu_s"])
        target = " (the default; target: at least 5x)" if name == f"ours, {default}" else ""
        lines.append(f"duplicity / {name}: wall {wall:.1f}x, CPU {cpu:.1f}x{target}")
    return lines


def run_ours(
    base: Path, source: Path, store: ProftpdStore, certs: Certs, compression: str
) -> dict[str, float | int | bool]:
    """One run of the agent with `compression`; its set is removed from the store afterwards so
    that the next run publishes the same night afresh."""
    base.mkdir()
    dump = base / "fake-mariadb-dump"
    dump.write_text(f"#!/bin/sh\nexec cat {source / 'dump.sql'}\n")
    dump.chmod(0o755)
    lister = base / "fake-mariadb"
    lister.write_text("#!/bin/sh\necho shop\n")
    lister.chmod(0o755)
    (base / "store.password").write_text(PASSWORD + "\n")
    (base / "my.cnf").write_text("[client]\n")
    config = {
        "customer": "c1",
        "guest": "g1",
        "paths": [str(source / "www")],
        "databases": "all",
        "mysql_defaults_file": str(base / "my.cnf"),
        "compression": compression,
        "deadline": None,
        "store": {
            "host": "localhost",
            "port": store.port,
            "user": "g1",
            "password_file": str(base / "store.password"),
            "ca_file": str(certs.good_cert),
            "timeout_seconds": 60,
        },
        "work_dir": str(base / "work"),
        "status_file": str(base / "state" / "status.json"),
        "textfile": None,
        "lock_file": str(base / "state" / "lock"),
        "tools": {"mariadb": str(lister), "mariadb-dump": str(dump)},
    }
    (base / "config.json").write_text(json.dumps(config))
    wall, cpu, code = measured([sys.executable, str(AGENT_PATH), "--config",
                                str(base / "config.json")])  # fmt: skip
    status = json.loads((base / "state" / "status.json").read_text())
    [night] = [p for p in store.home.iterdir() if not p.name.endswith(".partial")]
    check = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=night, check=False)
    suffix = ".zst" if compression == "zstd" else ".gz"
    result: dict[str, float | int | bool] = {
        "ok": code == 0 and check.returncode == 0 and (night / f"www.tar{suffix}").is_file(),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "bytes_on_store": tree_bytes(night),
        "server_hash_checked": bool(status.get("server_hash")),
    }
    shutil.rmtree(night)
    return result


def run_duplicity(base: Path, source: Path, store: ProftpdStore, cert: Path) -> dict[str, float | int | bool]:
    target = store.home / "duplicity"
    env = dict(os.environ, FTP_PASSWORD=PASSWORD, HOME=str(base / "duphome"))
    (base / "duphome").mkdir()
    wall, cpu, code = measured(
        [
            "duplicity", "full", "--no-encryption", "--archive-dir", str(base / "duparchive"),
            "--name", "bench", f"--ssl-cacert-file={cert}", "--num-retries", "2",
            str(source), f"ftpes://g1@localhost:{store.port}/duplicity",
        ],
        env=env,
    )  # fmt: skip
    return {
        "ok": code == 0,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "bytes_on_store": tree_bytes(target) if target.exists() else 0,
    }


if __name__ == "__main__":
    sys.exit(main())
