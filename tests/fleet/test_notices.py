"""Customer notices (issue 13): every kind in both languages with its facts, HTML escaping of
hostile fields, the record that sends each event once, and the rendered samples' drift.

The fleet is docs/notices/sample-fleet.yml (the state after a merge; samples.before_of gives
the state before). Expected figures are worked out by hand from that file, in the comments.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import re
import warnings
from pathlib import Path

import pytest

from vpsfleet.deploy_changes import changes_between
from vpsfleet.deploy_plan import DeployPlan, build_plan
from vpsfleet.fleet import Fleet
from vpsfleet.loader import load_fleet
from vpsfleet.notices import samples
from vpsfleet.notices.events import event_of
from vpsfleet.notices.facts import context
from vpsfleet.notices.record import Record, RecordUnreadable, Sent
from vpsfleet.notices.render import DEPLOY_KINDS, KINDS, Rendered, render
from vpsfleet.notices.sender import change_for

from .conftest import REPO

SAMPLE = REPO / "docs" / "notices" / "sample-fleet.yml"
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
SEED = "a-test-seed-not-a-secret"


def plain(text: str) -> str:
    """No-break spaces as spaces, lines joined: facts are searched regardless of wrapping."""
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ").replace("\n> ", " "))


def plan_of(after: Fleet) -> DeployPlan:
    before = samples.before_of(after)
    return build_plan(before, after, changes_between(before, after, now=NOW), source="s",
                      from_rev="a", to_rev="b")


@pytest.fixture(scope="module")
def sample() -> tuple[Fleet, DeployPlan]:
    after = load_fleet(SAMPLE, today=NOW.date())
    return after, plan_of(after)


def rendered(sample: tuple[Fleet, DeployPlan], kind: str, lang: str) -> Rendered:
    fleet, plan = sample
    (notice,) = [n for n in plan.notices if n.kind == kind]
    return render(kind, lang, context(kind, fleet, change_for(plan, notice), lambda: SEED))


def test_the_sample_merge_names_one_notice_of_each_kind(sample: tuple[Fleet, DeployPlan]) -> None:
    _, plan = sample
    assert sorted(n.kind for n in plan.notices) == sorted(DEPLOY_KINDS)


# Per kind and language: the subject and the facts, by hand from sample-fleet.yml.
FACTS = {
    ("access_codes", "fr"): ("Votre VPS boutique est prêt : vos codes d'accès", [
        "Adresse IPv4 fixe : 198.51.100.10", "Paris",
        "vps-s (1 vCPU, 2048 Mo de mémoire, 20 Go de disque dédié)",
        "Compte de console : client", "Compte SSH (par clé uniquement) : c-durand",
        "ssh-ed25519 … durand@laptop", "adressera par courriel les codes d'accès"]),
    ("access_codes", "en"): ("Your VPS boutique is ready: your access codes", [
        "Fixed IPv4 address: 198.51.100.10", "Console account: client",
        "SSH account (keys only): c-durand", "the French contract prevails"]),
    # block 2 of blog: 2026-11-23 10:00 -> 2026-11-30 10:00 = 7 days = 168 h; the next block
    # takes the policy's third duration, 720 h; refusals start at block 3.
    ("smtp_block", "fr"): ("VPS blog : envoi de courriels (port 25) bloqué", [
        "Blocage n° : 2", "Depuis le : 23 novembre 2026 à 10:00 UTC",
        "Durée : 168 heures, jusqu'au 30 novembre 2026 à 10:00 UTC",
        "Motif : 1200 mails to unknown recipients in an hour",
        "n° 1 : 2 septembre 2026 à 08:00 UTC au 3 septembre 2026 à 08:00 UTC",
        "le prochain durerait 720 heures", "à partir du 3e blocage",
        "écrivez à support@hebergement.example.net",
        "ne conserve aucune copie des courriels émis depuis le port SMTP"]),
    ("smtp_block", "en"): ("VPS blog: outgoing mail (port 25) blocked", [
        "Block number: 2", "Duration: 168 hours, until 30 November 2026, 10:00 UTC",
        "#1: 2 September 2026, 08:00 UTC to 3 September 2026, 08:00 UTC",
        "the next one would last 720 hours", "keeps no copy of the mail",
        "write to support@hebergement.example.net"]),
    ("network_cut", "fr"): ("VPS forum : accès à Internet coupé", [
        "Depuis le 23 novembre 2026, votre VPS forum (198.51.100.12)",
        "Nature de l'intervention :", "Durée prévue :", "Ce que vous devez faire",
        "la nature et la durée de l'intervention"]),
    ("network_cut", "en"): ("VPS forum: Internet access cut", [
        "Since 23 November 2026, your VPS forum (198.51.100.12)", "Nature:",
        "Expected duration:", "What you must do"]),
    # wiki was suspended on 2026-11-20 before the merge
    ("resume", "fr"): ("VPS wiki : accès à Internet rétabli", [
        "VPS wiki (198.51.100.13), en place depuis le 20 novembre 2026, est levée"]),
    ("resume", "en"): ("VPS wiki: Internet access restored", [
        "in place since 20 November 2026, is over"]),
    # shop: since 2026-11-23 09:00, policy minimum 24 h -> earliest end 2026-11-24 09:00
    ("mitigation_start", "fr"): ("VPS shop : attaque détectée, mitigation activée", [
        "activée depuis le 23 novembre 2026 à 09:00 UTC", "Profil de protection : web",
        "Ports entrants encore ouverts : 22/tcp, 80/tcp, 443/tcp", "Durée minimale : 24 heures",
        "Fin au plus tôt : 24 novembre 2026 à 09:00 UTC",
        "ne pourra pas être désactivée jusqu'au terme du délai de 24 heures"]),
    ("mitigation_start", "en"): ("VPS shop: attack detected, mitigation on", [
        "Minimum duration: 24 hours", "Earliest end: 24 November 2026, 09:00 UTC"]),
    # archive: managed (backed up), terminated on 2026-11-23: backups erased the same day
    ("termination", "fr"): ("VPS archive : résiliation, suppression des données", [
        "a pris fin le 23 novembre 2026", "Sauvegardes effacées le : 23 novembre 2026",
        "le VPS du Client sera supprimé ainsi que l'intégralité des données",
        "effacé par [le prestataire] à la date de résiliation"]),
    ("termination", "en"): ("VPS archive: terminated, data deleted", [
        "ended on 23 November 2026", "Backups erased on: 23 November 2026"]),
    # calcul: paid 2026-11-20 + 7 days = due 2026-11-27; delivered 2026-11-23 (on time)
    ("dedicated_available", "fr"): ("Votre serveur dédié calcul est disponible", [
        "depuis le 23 novembre 2026", "Adresse IPv4 fixe : 198.51.100.30",
        "ssh root@198.51.100.30", "due au plus tard le : 27 novembre 2026",
        "dans un délai maximal de 7 jours"]),
    ("dedicated_available", "en"): ("Your dedicated server calcul is available", [
        "Due at the latest on: 27 November 2026", "within 7 days"]),
    # api: vps-s (1 vCPU, 2048 MB, 20 GB) -> vps-m (2, 4096, 40); bandwidth unchanged (100)
    ("plan_change_done", "fr"): ("VPS api : changement de configuration effectué", [
        "de la configuration vps-s à la configuration vps-m", "Processeurs : 1 → 2 vCPU",
        "Mémoire : 2048 → 4096 Mo", "Disque dédié : 20 → 40 Go", "en 48 heures au plus",
        "intervient dans les heures suivant sa commande"]),
    ("plan_change_done", "en"): ("VPS api: plan change done", [
        "from plan vps-s to plan vps-m", "Memory: 2048 → 4096 MB", "within 48 hours"]),
}


@pytest.mark.parametrize(("kind", "lang"), sorted(FACTS))
def test_each_notice_says_its_facts(sample: tuple[Fleet, DeployPlan], kind: str,
                                    lang: str) -> None:
    notice = rendered(sample, kind, lang)
    subject, facts = FACTS[(kind, lang)]
    assert plain(notice.subject) == subject
    text, html = plain(notice.text), plain(notice.html)
    for fact in facts:
        assert fact in text
    assert f'<html lang="{lang}">' in notice.html
    assert "Boulangerie Durand SARL" in text and "Boulangerie Durand SARL" in html
    greeting = "Bonjour" if lang == "fr" else "Hello"
    assert text.startswith(greeting) and f"<p>{greeting}" in html
    if lang == "en":
        assert "the French contract prevails" in text


def test_only_changed_resources_are_listed(sample: tuple[Fleet, DeployPlan]) -> None:
    assert "Bande passante" not in rendered(sample, "plan_change_done", "fr").text


def test_access_codes_give_the_password_pulumi_writes(sample: tuple[Fleet, DeployPlan]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated, present in 3.11: what checks cloud-init's hash

    importlib.import_module("tests.pulumi")  # puts pulumi/ on the path
    cloudinit = importlib.import_module("vpsfleet_infra.cloudinit")
    initial_password = importlib.import_module("vpsfleet_infra.access").initial_password

    fleet, _ = sample
    notice = rendered(sample, "access_codes", "fr")
    (password,) = re.findall(r"Mot de passe initial : (\S+)", plain(notice.text))
    assert len(password) == 20 and password in notice.html
    guest = fleet.guest("boutique")
    assert guest is not None
    seeded = json.loads(cloudinit.user_data(fleet, guest, initial_password(
        SEED, fleet.environment, "boutique")).removeprefix("#cloud-config\n"))
    (account,) = seeded["chpasswd"]["users"]
    assert account["name"] == "client"  # the console account the notice names
    assert crypt.crypt(password, account["password"]) == account["password"]


def test_an_unmanaged_guest_gets_keys_not_a_password(sample: tuple[Fleet, DeployPlan]) -> None:
    fleet, _ = sample
    guests = [g.model_copy(update={"offer": "unmanaged"}) if g.name == "boutique" else g
              for g in fleet.guests]
    unmanaged = dataclasses.replace(fleet, guests=guests)
    plan = plan_of(unmanaged)
    (notice,) = [n for n in plan.notices if n.kind == "access_codes"]

    def no_seed() -> str:
        raise AssertionError("an unmanaged guest's notice needs no seed")

    text = plain(render("access_codes", "en", context(
        "access_codes", unmanaged, change_for(plan, notice), no_seed)).text)
    assert "SSH account (keys only): root" in text and "ssh root@198.51.100.10" in text
    assert "password" not in text.split("Authorised key")[0].lower()


def test_hostile_fields_are_escaped_in_html(sample: tuple[Fleet, DeployPlan]) -> None:
    fleet, _ = sample
    hostile = '<script>alert("x")</script> & <b>Co</b>'
    customers = [c.model_copy(update={"name": hostile}) for c in fleet.customers]
    guests = [g.model_copy(update={"smtp_blocks": [
        *g.smtp_blocks[:-1], g.smtp_blocks[-1].model_copy(update={"reason": "<img src=x>"})]})
        if g.name == "blog" else g for g in fleet.guests]
    bad = dataclasses.replace(fleet, customers=customers, guests=guests)
    plan = plan_of(bad)
    for notice in plan.notices:
        for lang in ("fr", "en"):
            out = render(notice.kind, lang, context(notice.kind, bad, change_for(plan, notice),
                                                    lambda: SEED))
            assert "<script>" not in out.html and "<b>Co</b>" not in out.html
            assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;Co&lt;/b&gt;" \
                in out.html
            assert hostile in out.text  # plain text is not HTML: shown as written
            if notice.kind == "smtp_block":
                assert "<img" not in out.html and "&lt;img src=x&gt;" in out.html


# --- events and the record ---------------------------------------------------------------------


def test_event_keys_name_the_events_own_identity(sample: tuple[Fleet, DeployPlan]) -> None:
    fleet, plan = sample
    keys = {n.kind: event_of(n.kind, fleet, change_for(plan, n)).key for n in plan.notices}
    assert keys == {
        "access_codes": "access_codes/boutique@2026-11-23/added",
        "smtp_block": "smtp_block/blog@2026-03-01/2/2026-11-23T10:00:00Z",
        "network_cut": "network_cut/forum@2026-03-01/2026-11-23",
        "resume": "resume/wiki@2026-03-01/2026-11-20",
        "mitigation_start": "mitigation_start/shop@2026-03-01/2026-11-23T09:00:00Z",
        "termination": "termination/archive@2026-03-01/2026-11-23",
        "dedicated_available": "dedicated_available/calcul/2026-11-23",
        "plan_change_done": "plan_change_done/api@2026-03-01",
    }


def sent(event: str) -> Sent:
    return Sent(event=event, kind="plan_change_done", machine="api", customer="c", recipient="r",
                copy="o", language="fr", subject="s", message_id="<m>", sent_at="t",
                promise="M9")


def test_a_plan_change_back_and_again_is_announced_again(tmp_path: Path) -> None:
    record = Record(tmp_path)
    record.add("plan_change_done/api@x", sent("vps-s->vps-m"))
    again = Record(tmp_path)  # read back from the file
    assert again.already("plan_change_done/api@x", "vps-s->vps-m") is not None
    again.add("plan_change_done/api@x", sent("vps-m->vps-s"))
    assert again.already("plan_change_done/api@x", "vps-s->vps-m") is None


def test_an_unreadable_record_is_an_error_not_an_empty_record(tmp_path: Path) -> None:
    (tmp_path / "notices.json").write_text("{not json")
    with pytest.raises(RecordUnreadable, match="nothing was sent"):
        Record(tmp_path)


# --- the rendered samples in docs/notices ------------------------------------------------------


def test_the_rendered_samples_have_not_drifted(tmp_path: Path) -> None:
    assert samples.main([str(tmp_path), "--fleet", str(SAMPLE)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == len(KINDS) * 2 * 2  # kinds x languages x (text, html)
    docs = REPO / "docs" / "notices"
    for name in written:
        assert (docs / name).read_text() == (tmp_path / name).read_text(), (
            f"docs/notices/{name} drifted: python -m vpsfleet.notices.samples docs/notices")
    assert samples.main([str(docs), "--check"]) == 0


def test_a_mitigation_notice_takes_the_offers_minimum(tmp_path: Path) -> None:
    from .test_deploy import LAB, MITIGATE_APP, edited, fleet_of

    def offer_30h(fleet: Fleet) -> Fleet:
        """alpha-app's offer (managed) keeps a mitigation 30 h, whatever the lab says today."""
        offers = [o.model_copy(update={"mitigation_minimum_hours": 30}) if o.name == "managed"
                  else o for o in fleet.offers]
        return dataclasses.replace(fleet, offers=offers)

    before = offer_30h(fleet_of(tmp_path, LAB, "before.yml"))
    after = offer_30h(fleet_of(tmp_path, edited(MITIGATE_APP), "after.yml"))
    assert after.policy.mitigation.minimum_hours != 30
    plan = build_plan(before, after, changes_between(before, after, now=NOW), source="s",
                      from_rev="a", to_rev="b")
    (notice,) = plan.notices
    assert (notice.kind, notice.machine, notice.language) == ("mitigation_start", "alpha-app",
                                                             "fr")
    text = plain(render("mitigation_start", "fr", context(
        notice.kind, after, change_for(plan, notice), lambda: SEED)).text)
    # since 2026-11-23 09:00 (MITIGATE_APP) + 30 h = 2026-11-24 15:00
    assert "Durée minimale : 30 heures" in text
    assert "Fin au plus tôt : 24 novembre 2026 à 15:00 UTC" in text
    assert "jusqu'au terme du délai de 30 heures" in text


def test_a_dedicated_servers_cut_and_block_are_noticed_with_its_facts(tmp_path: Path) -> None:
    """Kept at the edge router for a dedicated server (004: M6, M7): the same notices."""
    from .test_deploy import CUT_AND_BLOCK_DEDI, LAB, edited, fleet_of

    before = fleet_of(tmp_path, LAB, "before.yml")  # lab-a has an edge router
    after = fleet_of(tmp_path, edited(CUT_AND_BLOCK_DEDI, text=LAB), "after.yml")
    plan = build_plan(before, after, changes_between(before, after, now=NOW), source="s",
                      from_rev="a", to_rev="b")
    texts = {n.kind: plain(render(n.kind, n.language, context(
        n.kind, after, change_for(plan, n), lambda: SEED)).text) for n in plan.notices}
    assert set(texts) == {"network_cut", "smtp_block"}
    assert all("alpha-dedi" in t and "198.51.100.20" in t for t in texts.values())
    assert "spam reported" in texts["smtp_block"]
