"""A notice's words: the one set of templates and their rendering, shared with the programs
shipped to machines, lives in `vpsfleet_agents.notices.render` (templates in
`vpsfleet_agents/notices/templates/`); this module names it for the deploy's notices."""

from __future__ import annotations

from vpsfleet_agents.notices.render import (
    DEPLOY_KINDS,
    HOST_KINDS,
    KINDS,
    LANGUAGES,
    Rendered,
    rate,
    render,
    volume,
)

__all__ = ["DEPLOY_KINDS", "HOST_KINDS", "KINDS", "LANGUAGES", "Rendered", "rate", "render", "volume"]
