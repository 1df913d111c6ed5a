"""vpsfleet-security-pending: the security updates a guest has not installed yet (M15).

Prints a JSON list of {name, installed, candidate, origin, label, codename}, one per installed
package whose candidate version comes from a security archive (a Release whose Label ends in
`-Security`, or whose Codename ends in `-security`), optionally only the packages matching the
regular expressions given as arguments (the applications the provider maintains). Reads apt's
lists as they are: the caller refreshes them first. Needs python3-apt.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import apt_pkg


def security_origin(version: Any) -> dict[str, str] | None:
    """The first security archive offering `version` (an apt_pkg.Version), if any."""
    for package_file, _index in version.file_list:
        label = str(package_file.label or "")
        codename = str(package_file.codename or "")
        if label.endswith("-Security") or codename.endswith("-security"):
            return {"origin": str(package_file.origin or ""), "label": label, "codename": codename}
    return None


def pending(patterns: list[str]) -> list[dict[str, str]]:
    wanted = [re.compile(p) for p in patterns]
    apt_pkg.init()
    cache = apt_pkg.Cache(None)
    policy = apt_pkg.Policy(cache)
    found: list[dict[str, str]] = []
    for package in cache.packages:
        installed = package.current_ver
        if installed is None:
            continue
        if wanted and not any(p.search(package.name) for p in wanted):
            continue
        candidate = policy.get_candidate_ver(package)
        if candidate is None or apt_pkg.version_compare(candidate.ver_str, installed.ver_str) <= 0:
            continue
        origin = security_origin(candidate)
        if origin is None:
            continue
        found.append(
            {
                "name": str(package.name),
                "installed": str(installed.ver_str),
                "candidate": str(candidate.ver_str),
                **origin,
            }
        )
    return sorted(found, key=lambda p: p["name"])


def main(argv: list[str] | None = None) -> int:
    """The patterns are the arguments; prints the list, exit 0."""
    print(json.dumps(pending(sys.argv[1:] if argv is None else argv)))
    return 0
