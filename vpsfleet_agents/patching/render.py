"""The notice mail, in the customer's language: the role's text template (`notice-LANG.txt`,
`string.Template` placeholders) filled in, with the headers the tests and operators read."""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from string import Template
from typing import Any

from vpsfleet_agents.patching.schedule import zone_name


@dataclass(frozen=True)
class Words:
    """The notice's words in one language (`days` and `months`: space-separated, Monday and
    January first)."""

    days: str
    months: str
    when: str
    reboot: str
    restart: str
    action_reboot: str
    action_restart: str
    none: str


# Each phrase in the notice's languages: French, then English.
LANGUAGES = ("fr", "en")
PHRASES: dict[str, tuple[str, str]] = {
    "days": (
        "lundi mardi mercredi jeudi vendredi samedi dimanche",
        "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    ),
    "months": (
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
        "January February March April May June July August September October November December",
    ),
    "when": ("{day} {d} {month} {y} à {hm} ({tz})", "{day} {d} {month} {y} at {hm} ({tz})"),
    "reboot": (
        "Ces mises à jour ne prennent effet qu'après un redémarrage du serveur "
        "(demandé par : {pkgs}). Le serveur sera indisponible quelques minutes.",
        "These updates take effect only after the server restarts (requested by: "
        "{pkgs}). The server will be unavailable for a few minutes.",
    ),
    "restart": (
        "Ces mises à jour touchent des bibliothèques utilisées par des services en "
        "cours d'exécution, qui seront redémarrés : {services}.",
        "These updates change libraries used by running services, which will be restarted: {services}.",
    ),
    "action_reboot": ("redémarrage", "reboot"),
    "action_restart": ("redémarrage de services", "service restart"),
    "none": ("(aucune)", "(none)"),
}
WORDS: dict[str, Words] = {
    lang: Words(**{name: texts[column] for name, texts in PHRASES.items()})
    for column, lang in enumerate(LANGUAGES)
}


@dataclass(frozen=True)
class Need:
    """What the notice announces."""

    reboot: bool
    reboot_packages: list[str]
    services: list[str]
    updated: list[str]


def say_when(moment: dt.datetime, lang: str) -> str:
    words = WORDS[lang]
    return words.when.format(
        day=words.days.split()[moment.weekday()],
        d=moment.day,
        month=words.months.split()[moment.month - 1],
        y=moment.year,
        hm=moment.strftime("%H:%M"),
        tz=zone_name(),
    )


def language(cfg: dict[str, Any]) -> str:
    """The customer's language when the notice has its words, else French."""
    lang = cfg.get("language")
    return lang if isinstance(lang, str) and lang in WORDS else "fr"


def render(cfg: dict[str, Any], need: Need, reboot_at: dt.datetime) -> EmailMessage:
    lang = language(cfg)
    words = WORDS[lang]
    reasons = []
    if need.reboot:
        reasons.append(words.reboot.format(pkgs=", ".join(need.reboot_packages) or words.none))
    if need.services:
        reasons.append(words.restart.format(services=", ".join(need.services)))
    template = Template((Path(cfg["templates"]) / f"notice-{lang}.txt").read_text("utf-8"))
    text = template.safe_substitute(
        hostname=cfg["hostname"],
        customer_name=cfg.get("customer_name", ""),
        provider_name=cfg.get("provider_name", ""),
        operations_email=cfg["operations_email"],
        updated="\n".join(f"  - {u}" for u in need.updated) or f"  {words.none}",
        reasons="\n\n".join(textwrap.fill(r, width=76) for r in reasons),
        action=words.action_reboot if need.reboot else words.action_restart,
        when=say_when(reboot_at, lang),
        when_iso=reboot_at.isoformat(timespec="minutes"),
    )
    subject, _, body = text.partition("\n\n")
    msg = EmailMessage()
    msg["Subject"] = subject.removeprefix("Subject:").strip()
    msg["From"] = cfg["mail_from"]
    msg["To"] = cfg["customer_email"]
    if cfg.get("operations_email"):
        msg["Cc"] = cfg["operations_email"]
    msg["Date"] = format_datetime(dt.datetime.now().astimezone())
    msg["Message-ID"] = make_msgid(domain=cfg["hostname"])
    msg["X-Vpsfleet-Notice"] = "reboot" if need.reboot else "restart"
    msg["X-Vpsfleet-Host"] = cfg["hostname"]
    msg["X-Vpsfleet-Reboot-At"] = reboot_at.isoformat(timespec="minutes")
    msg.set_content(body.lstrip("\n"), charset="utf-8", cte="8bit")
    msg["Content-Language"] = lang  # after set_content, which clears Content-* headers
    return msg
