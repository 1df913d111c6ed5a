"""A notice's words: one template per kind and language (templates/KIND.LANG.j2), rendered
twice, as plain text and as simple HTML.

The one set of templates of every customer notice: `vpsfleet.notices` renders the deploy's kinds
with it, and the programs shipped to machines render theirs (the traffic job's
`traffic_throttle`, sent from the hypervisor host) with the same code, which is why it lives in
`vpsfleet_agents` (built into each program by `vpsfleet.agent_build`, templates included). On a
machine it needs Debian's `python3-jinja2`.

The kind templates only call the macros of a format library (`fmt.txt.j2` or `fmt.html.j2`),
so the same wording gives both parts. The HTML environment escapes every value (customer names
and block reasons are hostile input); the text environment does not need to.
"""

from __future__ import annotations

import datetime as dt
import re
import textwrap
import zoneinfo
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

# The notices a deploy sends (vpsfleet.notices.sender), one per change of the fleet file.
DEPLOY_KINDS = ("access_codes", "smtp_block", "network_cut", "resume", "mitigation_start",
                "termination", "dedicated_available", "plan_change_done")
# The notices a program on a machine sends by itself (the hypervisor's traffic job, M8).
HOST_KINDS = ("traffic_throttle",)
KINDS = DEPLOY_KINDS + HOST_KINDS
LANGUAGES = ("fr", "en")
WIDTH = 72

_MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _day(value: dt.date | None, lang: str) -> str:
    if value is None:
        return "—"
    return f"{value.day}\u00a0{_MONTHS[lang][value.month - 1]}\u00a0{value.year}"


def _moment(value: dt.datetime | None, lang: str) -> str:
    if value is None:
        return "—"
    moment = value.astimezone(dt.UTC)
    joint = " à " if lang == "fr" else ", "
    return f"{_day(moment.date(), lang)}{joint}{moment:%H:%M} UTC"


def _reflow(text: str, prefix: str = "", first: str | None = None) -> str:
    """Whitespace collapsed, wrapped at WIDTH; addresses and URLs are never split, nor a date,
    nor French punctuation from its word (no-break spaces, which textwrap keeps)."""
    words = re.sub(r"[ \t\r\n]+", " ", str(text)).strip()
    words = re.sub(r" ([:;!?»])", "\u00a0\\1", words).replace("« ", "«\u00a0")
    return textwrap.fill(words, WIDTH, initial_indent=prefix if first is None else first,
                         subsequent_indent=prefix, break_long_words=False,
                         break_on_hyphens=False)


def _local_moment(value: dt.datetime | None, zone: str, lang: str) -> str:
    """An instant in `zone`'s local time, the zone named: a cycle ends at local midnight."""
    if value is None:
        return "—"
    moment = value.astimezone(zoneinfo.ZoneInfo(zone))
    joint = " à " if lang == "fr" else ", "
    return f"{_day(moment.date(), lang)}{joint}{moment:%H:%M} ({zone})"


_UNITS = {"fr": ("To", "Go", "Mo", "ko", "octets"), "en": ("TB", "GB", "MB", "kB", "bytes")}


def volume(count: int, lang: str = "en") -> str:
    """Bytes in decimal units, as the contracts count them (10 To = 10^13 bytes), one decimal
    (a comma in French), never rounded up to the unit above."""
    names = _UNITS[lang]
    for name, size in zip(names[:4], (10**12, 10**9, 10**6, 10**3), strict=True):
        if count >= size:
            tenths = count * 10 // size  # truncated: 9.99 TB is not shown as 10 TB
            whole, tenth = divmod(tenths, 10)
            figure = f"{whole}" if tenth == 0 else f"{whole}{',' if lang == 'fr' else '.'}{tenth}"
            return f"{figure}\u00a0{name}"
    return f"{count}\u00a0{names[4]}"


def rate(kbit_s: int) -> str:
    """A rate as the contracts write it: 1 Mbit/s, 100 Mbit/s (512 kbit/s when not whole)."""
    return f"{kbit_s // 1000}\u00a0Mbit/s" if kbit_s % 1000 == 0 else f"{kbit_s}\u00a0kbit/s"


@jinja2.pass_context
def _day_filter(ctx: jinja2.runtime.Context, value: dt.date | None) -> str:
    return _day(value, ctx["lang"])


@jinja2.pass_context
def _moment_filter(ctx: jinja2.runtime.Context, value: dt.datetime | None) -> str:
    return _moment(value, ctx["lang"])


@jinja2.pass_context
def _local_filter(ctx: jinja2.runtime.Context, value: dt.datetime | None, zone: str) -> str:
    return _local_moment(value, zone, ctx["lang"])


@jinja2.pass_context
def _volume_filter(ctx: jinja2.runtime.Context, value: int) -> str:
    return volume(value, ctx["lang"])


def _template_source(name: str) -> str | None:
    """A template of this package's `templates/`, read through importlib.resources so that it is
    found inside a zip application as well as on disk."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    try:
        return (resources.files(__package__) / "templates" / name).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None


@cache
def _environment(html: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=html,
        undefined=jinja2.StrictUndefined,  # a fact missing from the context is an error
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["day"] = _day_filter
    env.filters["moment"] = _moment_filter
    env.filters["local_moment"] = _local_filter
    env.filters["volume"] = _volume_filter
    env.filters["rate"] = rate
    env.filters["reflow"] = _reflow
    return env


def _module(kind: str, lang: str, html: bool, facts: dict[str, Any]) -> Any:
    env = _environment(html)
    template = env.get_template(f"{kind}.{lang}.j2")
    values = {**facts, "lang": lang, "fmt": "fmt.html.j2" if html else "fmt.txt.j2"}
    return template.make_module(values)


def _tidy_text(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render(kind: str, lang: str, facts: dict[str, Any]) -> Rendered:
    """The subject, the text part and the HTML part of a notice."""
    if kind not in KINDS:
        raise ValueError(f"no notice of kind {kind!r}")
    if lang not in LANGUAGES:
        raise ValueError(f"no notices in language {lang!r}")
    text = _module(kind, lang, False, facts)
    subject = " ".join(str(text.subject).split())
    body = _module(kind, lang, True, facts)
    page = _environment(True).get_template("page.html.j2").render(
        lang=lang, subject=subject, body=Markup(str(body)))
    return Rendered(subject, _tidy_text(str(text)), page)
