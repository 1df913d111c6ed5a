"""The audit's output: a report per customer (JSON for tools, text for the operator), the
suggested fleet edit per machine, and the metrics of the monitor's node exporter. Nothing here
acts: the operator reads, decides, and commits the fleet edit."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpsfleet_agents import textfile
from vpsfleet_agents.atomic import write_atomic
from vpsfleet_agents.audit import sanitize
from vpsfleet_agents.audit.findings import Finding, MachineResult, describe

LABELS = {
    "open_proxy": "open proxy",
    "irc": "IRC server",
    "tor": "TOR relay",
    "vpn": "public VPN endpoint",
    "cardsharing": "cardsharing (CCcam) server",
}


@dataclass(frozen=True)
class Run:
    environment: str
    started: dt.datetime
    finished: dt.datetime
    command: list[str]
    machines: list[MachineResult]
    error: str | None  # the scan failed: no machine was examined


def suggestion(environment: str, machine: MachineResult, day: dt.date) -> str | None:
    """The fleet edit the operator may make; the program never makes it."""
    if not machine.findings:
        return None
    what = sorted({f"{LABELS[f.category]} on {f.port}/{f.protocol}" for f in machine.findings})
    if any(f.evidence == "confirmed" for f in machine.findings):
        reason = f"M29 forbidden service: {', '.join(what)} (audit {day.isoformat()})"
        return f"vpsfleet suspend {environment} {machine.target.name} --reason {json.dumps(reason)}"
    return (
        f"notice: ask customer {machine.target.customer} to stop or explain the "
        f"{', '.join(what)} on {machine.target.name}; re-run "
        f"`vpsfleet-audit run --only {machine.target.name}` before any suspension"
    )


def _finding(f: Finding) -> dict[str, Any]:
    s = f.service
    return {
        "category": f.category,
        "what": LABELS[f.category],
        "protocol": f.protocol,
        "port": f.port,
        "evidence": f.evidence,
        "service": describe(s),
        "nmap": {
            "name": sanitize.text(s.name, 100),
            "product": sanitize.text(s.product, 200),
            "version": sanitize.text(s.version, 100),
            "extrainfo": sanitize.text(s.extrainfo, 200),
            "tunnel": sanitize.text(s.tunnel, 20),
            "method": sanitize.text(s.method, 20),
            "fingerprint": sanitize.text(s.fingerprint, 300),
        },
        "confirmations": [
            {"test": c.test, "confirmed": c.confirmed, "transcript": c.transcript} for c in f.confirmations
        ],
    }


def machine_json(run: Run, m: MachineResult) -> dict[str, Any]:
    return {
        "name": m.target.name,
        "kind": m.target.kind,
        "address": m.target.address,
        "scanned": m.scanned,
        "findings": [_finding(f) for f in m.findings],
        "open_not_flagged": [
            {
                "protocol": c.protocol,
                "port": c.port,
                "service": describe(c.service),
                "tests": [{"test": t.test, "confirmed": t.confirmed} for t in c.confirmations],
            }
            for c in m.checked
        ],
        "suggestion": suggestion(run.environment, m, run.started.date()),
    }


def customer_json(run: Run, customer: str) -> dict[str, Any]:
    return {
        "customer": customer,
        "environment": run.environment,
        "started": run.started.isoformat(timespec="seconds"),
        "finished": run.finished.isoformat(timespec="seconds"),
        "error": run.error,
        "nmap_command": run.command,
        "machines": [machine_json(run, m) for m in run.machines if m.target.customer == customer],
        "promise": "M29: open proxies, IRC, TOR, public VPN and cardsharing may lead to suspension",
    }


def customer_text(data: dict[str, Any]) -> str:
    """The readable report: every value already escaped, so it is safe in a terminal."""
    lines = [
        f"Forbidden-services audit (M29) of customer {data['customer']} ({data['environment']})",
        f"run {data['started']} to {data['finished']}",
        "",
    ]
    if data["error"]:
        lines += [f"THE SCAN FAILED: {sanitize.text(data['error'])}", ""]
    for m in data["machines"]:
        head = f"{m['kind']} {m['name']} ({m['address']})"
        if not m["scanned"]:
            lines += [f"{head}: NOT SCANNED (no answer within the host timeout)", ""]
            continue
        if not m["findings"]:
            lines.append(f"{head}: nothing forbidden found")
        else:
            lines.append(f"{head}: {len(m['findings'])} forbidden service(s)")
            for f in m["findings"]:
                lines.append(
                    f"  - {f['what']} on {f['port']}/{f['protocol']}, {f['evidence']}; nmap: {f['service']}"
                )
                for c in f["confirmations"]:
                    lines.append(f"      test {c['test']}: {'CONFIRMED' if c['confirmed'] else 'no'}")
                    lines += [f"        {line}" for line in c["transcript"]]
            lines.append(f"  suggested: {m['suggestion']}")
        for c in m["open_not_flagged"]:
            tests = ", ".join(f"{t['test']} no" for t in c["tests"]) or "no active test"
            lines.append(f"  open, not flagged: {c['port']}/{c['protocol']} {c['service']} ({tests})")
        lines.append("")
    lines.append(
        "Nothing was changed: the suggested edits are for the operator (docs/forbidden-services.md)."
    )
    return "\n".join(lines) + "\n"


def write_reports(report_dir: Path, run: Run) -> Path:
    """One folder per run (`<UTC stamp>/<customer>.json|.txt`, `summary.json`), then `latest`
    pointed at it. Reports name customers: readable by root and group adm only."""
    folder = report_dir / run.started.strftime("%Y-%m-%dT%H%M%SZ")
    folder.mkdir(parents=True, exist_ok=True, mode=0o750)
    summary: dict[str, Any] = {
        "environment": run.environment,
        "started": run.started.isoformat(timespec="seconds"),
        "error": run.error,
        "customers": {},
    }
    for customer in sorted({m.target.customer for m in run.machines}):
        data = customer_json(run, customer)
        write_atomic(folder / f"{customer}.json", json.dumps(data, indent=2, sort_keys=True) + "\n", 0o640)
        write_atomic(folder / f"{customer}.txt", customer_text(data), 0o640)
        summary["customers"][customer] = {
            m["name"]: {"findings": len(m["findings"]), "suggestion": m["suggestion"]}
            for m in data["machines"]
        }
    write_atomic(folder / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n", 0o640)
    link = report_dir / "latest"
    tmp = report_dir / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(folder.name, tmp)
    os.replace(tmp, link)
    return folder


HELP = {
    "vpsfleet_audit_forbidden_services": "Forbidden services the last audit found on the machine (M29).",
    "vpsfleet_audit_confirmed_services": "Of those, the ones an active test confirmed (M29).",
    "vpsfleet_audit_machine_scanned": "1 when the last audit got an answer from the machine.",
}


def metrics(run: Run) -> textfile.Gauges:
    gauges = textfile.Gauges()
    # A machine is a guest or a server: the other label stays empty, which Prometheus drops.
    names = ("guest", "server", "customer")
    families = {name: gauges.family(name, text, names) for name, text in HELP.items()}
    for m in run.machines:
        pairs = {"guest": "", "server": "", m.target.kind: m.target.name, "customer": m.target.customer}
        values = {
            "vpsfleet_audit_forbidden_services": len(m.findings),
            "vpsfleet_audit_confirmed_services": sum(f.evidence == "confirmed" for f in m.findings),
            "vpsfleet_audit_machine_scanned": int(m.scanned),
        }
        for name, value in values.items():
            families[name].add_metric([pairs[label] for label in names], value)
    gauges.single(
        "vpsfleet_audit_run_ok", "1 when the last audit's scan ran to its end.", 0 if run.error else 1
    )
    gauges.single(
        "vpsfleet_audit_last_run_timestamp_seconds",
        "When the last audit finished.",
        int(run.finished.timestamp()),
    )
    return gauges
