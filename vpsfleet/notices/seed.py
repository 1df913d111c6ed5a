"""The password seed (the stack's secret `vpsfleet:passwordSeed`), read only when an
access-codes notice needs it: from a file, else the environment variable the CI sets from its
variables. Never printed, never written anywhere."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV = "VPSFLEET_PASSWORD_SEED"


class SeedMissing(Exception):
    pass


@dataclass(frozen=True)
class SeedSource:
    file: Path | None = None

    def __call__(self) -> str:
        if self.file is not None:
            try:
                seed = self.file.read_text(encoding="utf-8").strip()
            except OSError as err:
                raise SeedMissing(f"cannot read the password seed file {self.file}: "
                                  f"{err.strerror}") from None
        else:
            seed = os.environ.get(ENV, "").strip()
        if not seed:
            where = str(self.file) if self.file else f"${ENV}"
            raise SeedMissing(f"the access codes of a managed VPS need the stack's password seed "
                              f"(vpsfleet:passwordSeed), and {where} is empty or unset")
        return seed
