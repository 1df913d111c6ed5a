"""The environment of the processes the agents start."""

from __future__ import annotations

import os


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The C locale, so that the messages the agents read (lftp's above all) are the untranslated
    ones whatever the machine's language (a French guest's lftp says "Connexion refusée");
    LANGUAGE would still translate under some locales."""
    env = {k: v for k, v in os.environ.items() if k != "LANGUAGE"}
    env["LC_ALL"] = "C"
    env.update(extra or {})
    return env
