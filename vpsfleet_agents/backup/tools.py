"""The programs the agent drives, found once per run (or named by the configuration)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

from vpsfleet_agents.backup.config import Config
from vpsfleet_agents.backup.reasons import BackupError
from vpsfleet_agents.environment import child_env


@dataclasses.dataclass
class Tools:
    tar: str
    compressor: list[str]
    extension: str
    mariadb: str | None
    dump: str | None
    lftp: str

    @classmethod
    def find(cls, config: Config) -> Tools:
        override = config.tools

        def which(*names: str) -> str | None:
            for name in names:
                if name in override:
                    return override[name]
                found = shutil.which(name)
                if found:
                    return found
            return None

        if config.compression == "zstd":
            zstd = which("zstd")
            compressor = [zstd, "-q", "-c", "-T0", "-3"] if zstd else []
            extension = ".zst"
        else:
            gzip = which("pigz", "gzip")
            compressor = [gzip, "-c"] if gzip else []
            extension = ".gz"
        tar, lftp = which("tar"), which("lftp")
        found = (("tar", tar), ("lftp", lftp), ("compressor", compressor))
        missing = [name for name, value in found if not value]
        if missing:
            raise BackupError("config", f"missing tools: {', '.join(missing)}")
        assert tar is not None and lftp is not None
        return cls(
            tar=tar,
            compressor=compressor,
            extension=extension,
            mariadb=which("mariadb", "mysql"),
            dump=which("mariadb-dump", "mysqldump"),
            lftp=lftp,
        )

    def versions(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, path in (
            ("tar", self.tar),
            ("compressor", self.compressor[0]),
            ("dump", self.dump),
            ("lftp", self.lftp),
        ):
            if not path:
                continue
            try:
                out = subprocess.run(
                    [path, "--version"], capture_output=True, timeout=10, check=False, env=child_env()
                )
                text = (out.stdout or out.stderr).decode(errors="replace").strip()
                found[name] = text.splitlines()[0] if text else path
            except (OSError, subprocess.TimeoutExpired):
                found[name] = path
        return found
