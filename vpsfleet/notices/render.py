"""A notice's words: one template per kind and language (templates/KIND.LANG.j2), rendered
twice, as plain text and as simple HTML.

The kind templates only call the macros of a format library (`fmt.txt.j2` or `fmt.html.j2`),
so the same wording gives both parts. The HTML environment escapes every value (customer names
and block reasons are hostile input); the text environment does not need to.
"""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

KINDS = ("access_codes", "smtp_block", "network_cut", "resume", "mitigation_start",
         "termination", "dedicated_available", "plan_change_done")
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


@jinja2.pass_context
def _day_filter(ctx: jinja2.runtime.Context, value: dt.date | None) -> str:
    return _day(value, ctx["lang"])


@jinja2.pass_context
def _moment_filter(ctx: jinja2.runtime.Context, value: dt.datetime | None) -> str:
    return _moment(value, ctx["lang"])


@cache
def _environment(html: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vpsfleet.notices", "templates"),
        autoescape=html,
        undefined=jinja2.StrictUndefined,  # a fact missing from the context is an error
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["day"] = _day_filter
    env.filters["moment"] = _moment_filter
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
