"""The throttle notice: the customer notices' kind `traffic_throttle`, written on the host from the
job's configuration, in the contracts' decimal units and the customer's language."""

from __future__ import annotations

import builtins
import datetime as dt
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.traffic.test_config import GUEST
from vpsfleet_agents.notices.render import rate as worded_rate
from vpsfleet_agents.notices.render import volume
from vpsfleet_agents.traffic.config import Config, parse
from vpsfleet_agents.traffic.notice import NoticeUnavailable, amount, rate, throttle_notice

END = dt.datetime(2026, 7, 31, 22, 0, tzinfo=dt.UTC)  # 2026-08-01 00:00 in Paris (CEST)
SINCE = dt.datetime(2026, 7, 28, 21, 40, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("count", "text"),
    [(10 * 10**12, "10 TB"), (10_250_000_000_000, "10.2 TB"), (300_000, "300 kB"), (999, "999 B")],
)
def test_amounts_are_decimal_as_in_the_contract(count: int, text: str) -> None:
    assert amount(count) == text


def test_rates_read_as_the_contract_writes_them() -> None:
    assert (rate(1_000), rate(100_000), rate(512)) == ("1 Mbit/s", "100 Mbit/s", "512 kbit/s")
    assert worded_rate(1_000) == "1\u00a0Mbit/s"


@pytest.mark.parametrize(
    ("count", "lang", "text"),
    [
        (10 * 10**12, "fr", "10 To"),
        (10_250_000_000_000, "fr", "10,2 To"),
        (10_250_000_000_000, "en", "10.2 TB"),
        (9_999_999_999_999, "en", "9.9 TB"),  # never rounded up to the quota
        (1_500_000, "fr", "1,5 Mo"),
        (999, "fr", "999 octets"),
    ],
)
def test_the_notice_words_volumes_in_the_customers_language(count: int, lang: str, text: str) -> None:
    assert volume(count, lang).replace("\u00a0", " ") == text


def config(**top: Any) -> Config:
    guest = dict(GUEST)
    guest.update(top.pop("guest", {}))
    data = {
        "time_zone": "Europe/Paris",
        "mail_from": "noc@provider.example",
        "operations_email": "ops@provider.example",
        "guests": [guest],
        **top,
    }
    return parse(data, Path("t.json"))


def plain(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return " ".join(part.get_content().replace("\u00a0", " ").split())


def test_the_english_notice_names_the_guest_the_rate_and_the_local_end_of_the_cycle() -> None:
    cfg = config()
    message = throttle_notice(cfg, cfg.guests[0], 10 * 10**12 + 5, SINCE, END, END - dt.timedelta(days=3))
    assert message["Subject"] == (
        "VPS alpha-vps: monthly traffic volume reached, outbound rate limited to 1 Mbit/s"
    )
    body = plain(message)
    assert "Hello," in body and "has sent 10 TB of outbound traffic" in body
    assert "The plan's monthly volume: 10 TB" in body
    assert "Outbound rate limited since: 28 July 2026, 21:40 UTC" in body
    assert "End of the cycle: 1 August 2026, 00:00 (Europe/Paris)" in body
    assert "Your plan's rate (100 Mbit/s) comes back by itself" in body
    # Without a support address in the configuration, questions go to operations.
    assert "For any question: ops@provider.example." in body
    assert "the French contract prevails" in body


def test_the_notice_is_the_customer_notices_mail_with_operations_in_copy() -> None:
    cfg = config(
        provider_name="Hébergement Exemple",
        support_email="support@provider.example",
        guest={"customer_name": "Boulangerie Durand", "language": "fr"},
    )
    message = throttle_notice(cfg, cfg.guests[0], 10 * 10**12, SINCE, END, END)
    assert message["From"] == "Hébergement Exemple <noc@provider.example>"
    assert message["To"] == "Boulangerie Durand <client@customer.example>"
    assert message["Cc"] == "ops@provider.example"
    assert message["Reply-To"] == "support@provider.example"
    assert message["X-Vpsfleet-Notice"] == "traffic_throttle"
    assert message["Content-Language"] == "fr" and message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    body = plain(message)
    assert body.startswith("Bonjour Boulangerie Durand,")
    assert "à un volume déterminé de 10 To par mois" in body  # the contract's words, M8
    assert "Fin du cycle : 1 août 2026 à 00:00 (Europe/Paris)" in body
    assert "L'équipe Hébergement Exemple" in body
    html = message.get_body(("html",))
    assert html is not None and '<html lang="fr">' in html.get_content()


def test_a_customers_name_is_escaped_in_the_html_part() -> None:
    cfg = config(guest={"customer_name": "<script>x</script>"})
    message = throttle_notice(cfg, cfg.guests[0], 10 * 10**12, SINCE, END, END)
    html = message.get_body(("html",))
    assert html is not None
    assert "<script>" not in html.get_content() and "&lt;script&gt;" in html.get_content()


def test_without_jinja2_the_notice_is_reported_unavailable_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = config()
    real_import = builtins.__import__

    def no_jinja2(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith(("jinja2", "vpsfleet_agents.notices")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jinja2)
    with pytest.raises(NoticeUnavailable, match="install python3-jinja2"):
        throttle_notice(cfg, cfg.guests[0], 10 * 10**12, SINCE, END, END)


RENDER_FROM_THE_ZIP = """
import datetime as dt, sys
sys.path.insert(0, sys.argv[1])
from vpsfleet_agents.notices import render, traffic
end = dt.datetime(2026, 7, 31, 22, 0, tzinfo=dt.UTC)
facts = traffic.facts(traffic.Throttle("alpha-vps", 10**13, 10**13, 1000, 100000, end, end,
                                       "Europe/Paris", "support@provider.example"))
print(render.__file__)
print(render.render("traffic_throttle", "fr", facts).subject)
"""


def test_the_program_the_role_installs_carries_the_notice_templates(tmp_path: Path) -> None:
    """The zip application renders the notice from its own copy of the templates."""
    from tests.traffic.job import PROGRAM
    from vpsfleet import agent_build

    program = tmp_path / PROGRAM.name
    program.write_bytes(agent_build.build_bytes(PROGRAM))
    done = subprocess.run(
        [sys.executable, "-I", "-c", RENDER_FROM_THE_ZIP, str(program)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    where, subject = done.stdout.splitlines()
    assert where.startswith(str(program))
    assert subject == "VPS alpha-vps : volume de trafic mensuel atteint, débit sortant limité à 1 Mbit/s"
