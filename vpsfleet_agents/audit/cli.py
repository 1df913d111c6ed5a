"""vpsfleet-audit: the forbidden-services audit (M29), run from a monitor by its timer.

    vpsfleet-audit [--config FILE] run [--only NAME|ADDRESS ...]   # scan, confirm, report
    vpsfleet-audit [--config FILE] check                           # validate the configuration

Prints one JSON summary. Exit 0 when the audit ran (findings or not: it never acts, the
operator does); 1 when the scan failed (reported, metric run_ok 0); 2 on a bad configuration or
a target that is not in it (nothing was sent).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from vpsfleet_agents import textfile
from vpsfleet_agents.audit import confirm, findings, report, scan
from vpsfleet_agents.audit.config import Config, ConfigError, Target, load
from vpsfleet_agents.config_file import bad_configuration

DEFAULT_CONFIG = "/etc/vpsfleet/audit.json"


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vpsfleet-audit", description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=Path(os.environ.get("VPSFLEET_AUDIT_CONFIG", DEFAULT_CONFIG))
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="scan the fleet's machines, confirm, write the reports")
    run.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME|ADDRESS",
        help="only this machine of the configuration (repeatable)",
    )
    commands.add_parser("check", help="validate the configuration")
    return parser.parse_args(argv)


def chosen(config: Config, only: list[str]) -> tuple[list[Target], list[str]]:
    """The targets to scan, and what was asked for that the configuration does not hold."""
    if not only:
        return list(config.targets), []
    known = {t.name: t for t in config.targets} | {t.address: t for t in config.targets}
    refused = [item for item in only if item not in known]
    picked = {known[item].address: known[item] for item in only if item in known}
    return list(picked.values()), refused


def audit(config: Config, targets: list[Target]) -> report.Run:
    started = dt.datetime.now(dt.UTC)
    try:
        result = scan.run(config, targets)
    except scan.ScanError as error:
        machines = [findings.MachineResult(t, scanned=False) for t in targets]
        return report.Run(config.environment, started, dt.datetime.now(dt.UTC), [], machines, str(error))
    hosts = {h.address: h for h in result.scan.hosts}
    with confirm.Canary(config.canary_address, config.canary_port) as canary:
        machines = [findings.examine(config, t, hosts.get(t.address), canary) for t in targets]
    note = f"nmap reported hosts not asked for (ignored): {result.foreign}" if result.foreign else None
    return report.Run(config.environment, started, dt.datetime.now(dt.UTC), result.command, machines, note)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    try:
        config = load(args.config)
    except ConfigError as error:
        return bad_configuration(error)
    if args.command == "check":
        print(json.dumps({"ok": True, "targets": len(config.targets)}))
        return 0
    targets, refused = chosen(config, args.only)
    if refused:
        print(
            json.dumps(
                {
                    "error": "not a machine of the configuration: refused, nothing was scanned",
                    "refused": refused,
                }
            )
        )
        return 2
    if not targets:
        print(json.dumps({"ok": True, "targets": 0, "note": "no machine to audit"}))
        return 0
    run = audit(config, targets)
    folder = report.write_reports(config.report_dir, run)
    if config.metrics_file is not None and not args.only:
        textfile.write(config.metrics_file, report.metrics(run))
    print(
        json.dumps(
            {
                "report": str(folder),
                "error": run.error,
                "findings": {
                    m.target.name: [f"{f.category} {f.port}/{f.protocol} {f.evidence}" for f in m.findings]
                    for m in run.machines
                    if m.findings
                },
            },
            sort_keys=True,
        )
    )
    return 1 if run.error and not any(m.scanned for m in run.machines) else 0


if __name__ == "__main__":
    sys.exit(main())
