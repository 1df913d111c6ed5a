"""The dead-man mail to the customer of an unmanaged guest (M24): after hand-over the provider
cannot reach the guest, so the customer, who is root on it, is told that no set arrived, what to
check on the server and how to run a backup now, in the customer's language (French by default,
English as the variant, as every customer-facing mail)."""

from __future__ import annotations

import datetime as dt
import socket
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

LANGUAGES = ("fr", "en")

SUBJECT = {
    "fr": "{provider}Sauvegarde de {guest} : aucune sauvegarde reçue pour la nuit du {night}",
    "en": "{provider}Backup of {guest}: no backup received for the night of {night}",
}

NEWEST = {
    "fr": ("Votre dernière sauvegarde complète, du {newest}, reste intacte sur le serveur de sauvegarde.",
           "Aucune sauvegarde de ce serveur n'est encore arrivée sur le serveur de sauvegarde."),
    "en": ("Your last complete backup, of {newest}, is untouched on the backup store.",
           "No backup of this server has reached the backup store yet."),
}  # fmt: skip

BODY = {
    "fr": """\
Bonjour{name},

La sauvegarde de nuit de votre serveur {guest} n'est pas arrivée sur notre serveur de sauvegarde
({store}) pour la nuit du {night} (fenêtre {window}). {newest}

Votre serveur n'est pas infogéré : vous en êtes l'administrateur et nous n'y avons pas accès.
L'agent de sauvegarde installé sur votre serveur réessaie de lui-même pendant la fenêtre quand
notre serveur de sauvegarde ne répond pas ; s'il n'a pas réussi, voici que faire.

1. Regardez l'état de l'agent sur votre serveur (en root) :

     systemctl status vpsfleet-backup.service vpsfleet-backup.timer
     cat /var/lib/vpsfleet-backup/status.json
     journalctl -u vpsfleet-backup.service --since yesterday

   Le champ "reason" dit pourquoi la dernière tentative a échoué (par exemple store_unreachable :
   notre serveur ne répondait pas ; config : la configuration de l'agent ; db_unavailable : la
   base de données était arrêtée ; quota : votre espace de sauvegarde est plein).

2. Une fois la cause corrigée, lancez une sauvegarde maintenant :

     systemctl start vpsfleet-backup.service

   puis vérifiez que status.json indique "state": "ok".

3. Si l'agent n'existe plus sur le serveur (serveur réinstallé), la sauvegarde doit être
   configurée à nouveau : demandez-le-nous.

Documentation : {docs}
Si la cause est de notre côté, ou pour toute question : {support}
""",
    "en": """\
Hello{name},

The nightly backup of your server {guest} did not reach our backup store ({store}) for the
night of {night} (window {window}). {newest}

Your server is not managed: you are its administrator and we have no access to it. The backup
agent on your server retries by itself during the window when our store does not answer; since
it did not succeed, here is what to do.

1. Check the agent's state on your server (as root):

     systemctl status vpsfleet-backup.service vpsfleet-backup.timer
     cat /var/lib/vpsfleet-backup/status.json
     journalctl -u vpsfleet-backup.service --since yesterday

   Its "reason" field says why the last attempt failed (for example store_unreachable: our store
   did not answer; config: the agent's configuration; db_unavailable: the database was down;
   quota: your backup space is full).

2. Once the cause is fixed, run a backup now:

     systemctl start vpsfleet-backup.service

   then check that status.json says "state": "ok".

3. If the agent is no longer on the server (it was reinstalled), the backup must be configured
   again: ask us to do it.

Documentation: {docs}
If the cause is on our side, or for any question: {support}
""",
}

# The customer guide when the store's configuration names no address for it.
DOCS = {
    "fr": "le guide « Vos sauvegardes » (customer-backups.fr.md) fourni à la souscription",
    "en": 'the guide "Your backups" (customer-backups.en.md) given at subscription',
}
SUPPORT = {"fr": "répondez à ce message", "en": "reply to this message"}


def language(customer: dict[str, Any]) -> str:
    lang = customer.get("language")
    return lang if isinstance(lang, str) and lang in LANGUAGES else "fr"


def compose(
    config: dict[str, Any], customer: dict[str, Any], missing: dict[str, Any], night: str, store: str
) -> EmailMessage:
    """The mail to `customer` about the guest of `missing` ({guest, customer, newest})."""
    lang = language(customer)
    docs_url = str(config.get("customer_docs_url") or "")
    support = str(config.get("support_email") or "")
    newest = NEWEST[lang][0].format(newest=missing["newest"]) if missing.get("newest") else NEWEST[lang][1]
    name = str(customer.get("name") or "")
    provider = str(config.get("provider") or "")
    mail = EmailMessage()
    mail["From"] = config.get("mail_from") or f"root@{socket.getfqdn()}"
    mail["To"] = customer["email"]
    if support:
        mail["Reply-To"] = support
    mail["Subject"] = SUBJECT[lang].format(
        provider=f"[{provider}] " if provider else "", guest=missing["guest"], night=night
    )
    mail["Date"] = format_datetime(dt.datetime.now().astimezone())
    mail["Message-ID"] = make_msgid(domain=store if "." in store else None)
    mail["X-Vpsfleet-Alert"] = "backup-dead-man-customer"
    mail["X-Vpsfleet-Backup-Guest"] = missing["guest"]
    body = BODY[lang].format(
        name=f" {name}" if name else "",
        guest=missing["guest"],
        store=store,
        night=night,
        window=config.get("window", "00:00-03:00"),
        newest=newest,
        docs=docs_url.replace("{lang}", lang) if docs_url else DOCS[lang],
        support=support or SUPPORT[lang],
    )
    mail.set_content(body, charset="utf-8", cte="8bit")
    mail["Content-Language"] = lang  # after set_content, which clears Content-* headers
    return mail
