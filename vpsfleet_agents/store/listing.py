"""What a guest's folder holds, sorted out without trusting any name in it."""

from __future__ import annotations

import os
from pathlib import Path

from vpsfleet_agents.backup.sets import set_date
from vpsfleet_agents.store.journal import shown
from vpsfleet_agents.store.tree import TenantError, customer_checked, folder_checked


class Listing:
    """A guest folder's entries, sorted out: complete sets (real folders named YYYY-MM-DD, a real
    date), unfinished uploads (`*.partial` folders), the agent's `*.superseded` folders, and the
    rest: garbage, reported and left alone."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        customer_checked({"root": str(folder.parent.parent)}, folder.parent.name)  # <root>/<customer>
        self.sets: list[str] = []
        self.partials: list[str] = []
        self.garbage: list[str] = []
        self.exists = folder_checked(folder)
        if not self.exists:
            return
        try:
            with os.scandir(folder) as entries:
                found = [
                    (entry.name, entry.is_dir(follow_symlinks=False), entry.is_symlink()) for entry in entries
                ]
        except OSError as err:
            raise TenantError(f"{folder} cannot be read: {err.strerror or err}") from err
        for name, folder_entry, link in sorted(found):
            if folder_entry and set_date(name) is not None:
                self.sets.append(name)
            elif folder_entry and name.endswith(".partial"):
                self.partials.append(name)
            elif folder_entry and name.endswith(".superseded"):
                continue  # the agent's own, during a same-day replacement
            elif link:
                self.garbage.append(f"{shown(name)} (a symbolic link, not followed)")
            elif not folder_entry:
                self.garbage.append(f"{shown(name)} (not a folder)")
            else:
                self.garbage.append(f"{shown(name)} (not a set name YYYY-MM-DD)")
