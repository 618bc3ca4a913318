"""The services' error messages in the page's language.

The services speak English and say exactly what is wrong ("'x' is listed twice"); every
problem also carries a stable rule code and every error a stable code from the shared table
(`api.errors`). A German page shows the catalogue sentence of that code here instead; a
code without an entry (or a rule left open by the service) shows the English message, so a
page never shows less than the API would. English pages always show the service's own
message: it is the more specific one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from postmeister.domain.dns.notes import Note, joined

# A problem's rule code -> the German sentence. `field:rule` entries come first where one
# rule means different things on different fields (a number and a date are both "format").
PROBLEMS_DE: Final[dict[str, str]] = {
    # addresses and forward targets (`domain.addresses.rules.Rule`)
    "loop": "Eine Adresse kann nicht an sich selbst weiterleiten.",
    "duplicate": "Diese Adresse steht mehrfach in der Liste.",
    "required": "Diese Angabe fehlt.",
    "length": "Zu lang.",
    "charset": "Enthält Zeichen, die hier nicht erlaubt sind.",
    "antispam": "Diese Spam-Behandlung ist hier nicht möglich.",
    "kind": "Der Typ muss Postfach oder Weiterleitung sein.",
    "mailbox_only": "Diese Einstellung gibt es nur für Postfächer.",
    "exists": "Diese Adresse gibt es schon.",
    "foreign_sender": "Diese Absenderadresse gehört nicht zu Ihren Domains.",
    "range": "Der Wert liegt außerhalb des erlaubten Bereichs.",
    "quota_limit": "Das Kontingent ist größer als erlaubt.",
    # package limits (the rule is the limit's name)
    "max_addresses": "Das Paket erlaubt keine weiteren Adressen.",
    "max_mailboxes": "Das Paket erlaubt keine weiteren Postfächer.",
    "max_storage_bytes": "Der Speicher des Pakets reicht dafür nicht aus.",
    "max_quota_bytes": "Das Kontingent ist größer, als das Paket für ein Postfach erlaubt.",
    "max_app_passwords": "Das Paket erlaubt für dieses Postfach keine weiteren "
    "Anwendungspasswörter.",
    # autoresponder dates (`domain.autoresponders.schedule`)
    "dates": "Die Daten passen nicht zusammen: Das Ende darf nicht vor dem Beginn liegen, und "
    "eine Notiz mit künftigem Beginn kann nicht schon jetzt aktiv sein.",
    # what the forms parse (`web.forms`)
    "quota:format": "Eine ganze Zahl in MiB.",
    "autoresponder.activates:format": "Ein Datum wie 2026-12-24.",
    "autoresponder.expires:format": "Ein Datum wie 2026-12-24.",
    "expires_at:format": "Ein Datum wie 2026-12-24.",
    "format": "Eine ganze Zahl.",
    # the password policy (`domain.passwords.policy.RULES`)
    "min_length": "Das Passwort ist kürzer, als die Richtlinie verlangt.",
    "max_length": "Das Passwort ist länger, als die Richtlinie erlaubt.",
    "min_distinct": "Das Passwort hat zu wenige verschiedene Zeichen.",
    "contains_local_part": "Das Passwort enthält den Benutzernamen.",
    "contains_domain": "Das Passwort enthält die Domain.",
    "banned_word": "Das Passwort enthält ein verbotenes Wort.",
    "keyboard_sequence": "Das Passwort enthält eine Tastatur- oder Alphabetfolge.",
    "leaked": "Das Passwort steht in einer Liste geleakter Passwörter.",
}

# A field of the services' problems -> its German name on the page.
FIELDS_DE: Final[dict[str, str]] = {
    "address": "Adresse",
    "local_part": "Name",
    "domain": "Domain",
    "description": "Beschreibung",
    "antispam": "Spam-Behandlung",
    "forward_to": "Weiterleiten an",
    "password": "Passwort",
    "quota": "Kontingent",
    "autoresponder.text": "Text der Abwesenheitsnotiz",
    "autoresponder.active": "Abwesenheitsnotiz aktiv",
    "autoresponder.activates": "Einschalten am",
    "autoresponder.expires": "Ausschalten am",
    "application_password": "Anwendungspasswort",
    "device": "Gerät",
    "application": "Anwendung",
    "name": "Name",
    "customer_id": "Kunden-ID",
    "package_id": "Paket",
    "expires_at": "Ablaufdatum",
}

# A stable error code (`api.errors.STATUS_TABLE`) -> the German sentence of an error page.
FAILURES_DE: Final[dict[str, str]] = {
    "forbidden": "Das ist Ihnen hier nicht erlaubt.",
    "conflict": "Das passt nicht zum aktuellen Stand.",
    "already-exists": "Das gibt es schon.",
    "managed-by-sync": "Diese Domain wird von einer Sync-Quelle verwaltet: Ändern Sie "
    "stattdessen das Dokument der Quelle.",
    "invalid-input": "Die Eingabe ist ungültig.",
    "database-unavailable": "Die Datenbank ist gerade ausgelastet; versuchen Sie es gleich "
    "noch einmal.",
}


# A DNS note's code (`domain.dns.notes.ENGLISH`) -> the German sentence, same placeholders.
DNS_NOTES_DE: Final[dict[str, str]] = {
    "about.mx": "Wohin andere Server die E-Mails der Domain zustellen",
    "about.spf": "SPF: die Hosts, die ihre E-Mails senden dürfen",
    "about.dkim": "DKIM: der Schlüssel, mit dem ausgehende E-Mails signiert werden",
    "about.dmarc": "DMARC: was Empfänger mit E-Mails tun, die SPF und DKIM nicht bestehen, "
    "und wohin Berichte gehen",
    "about.mta-sts": "MTA-STS: kündigt die Richtlinie an (RFC 8461); die id ändert sich mit "
    "der Richtlinie",
    "about.mta-sts-host": "MTA-STS: der Host, der /.well-known/mta-sts.txt ausliefert",
    "about.tls-rpt": "TLS-RPT: wohin Absender TLS-Fehler melden (RFC 8460)",
    "about.autoconfig": "{client} fragt diesen Host nach den Einstellungen für das "
    "E-Mail-Programm (A/AAAA-Einträge mit seinen Adressen gehen auch)",
    "about.srv": "RFC 6186: wohin sich E-Mail-Programme verbinden",
    "about.srv-none": "RFC 6186: nicht angeboten",
    "no_answer": "Keine auswertbare Antwort: {error}",
    "no_record": "Kein {type}-Eintrag bei {name}",
    "mx_also": "E-Mails gingen auch an {others}, nicht nur an {ours}",
    "mx_elsewhere": "E-Mails gehen an {others}, nicht an {ours}",
    "srv_port": "Erwartet: Port {port} auf {target}",
    "cname_target": "Erwartet: ein CNAME auf {target}",
    "cname_missing": "Kein CNAME-Eintrag (und kein A/AAAA-Eintrag) bei {name}",
    "cname_addresses": "A/AAAA-Einträge mit den Adressen von {target}",
    "cname_or_addresses": "Erwartet: ein CNAME auf {target} (oder A/AAAA mit dessen Adressen)",
    "txt_missing": "Kein {kind}-Eintrag bei {name}",
    "txt_missing_others": "Kein {kind}-Eintrag bei {name} (nur andere TXT-Einträge: {count})",
    "txt_several": "{count} {kind}-Einträge: Empfänger werten keinen davon aus",
    "spf_lacks": "{term} fehlt vor dem all-Term",
    "spf_weaker": "Die Richtlinie {theirs}all ist schwächer als {ours}all",
    "rua_lacks": "{uri} fehlt in rua",
    "dmarc_no_policy": "p={policy} ist keine DMARC-Richtlinie",
    "dmarc_weaker": "Die Richtlinie p={theirs} ist schwächer als p={ours}",
    "dkim_version": "v={version} ist nicht DKIM1",
    "dkim_key_type": "Schlüsseltyp k={theirs} statt {ours}",
    "dkim_revoked": "Der Schlüssel ist leer (p=): widerrufen",
    "dkim_other_key": "Ein anderer Schlüssel (p=) als der, mit dem signiert wird",
    "mta_sts_id": "id={theirs} ist nicht die id der Richtlinie ({ours})",
}


def dns_note(locale: str, notes: Sequence[Note]) -> str:
    """A DNS record's notes in the page's language (every code has a German sentence: a
    test checks it)."""
    return joined(notes, DNS_NOTES_DE if locale == "de" else None)


def _root(field: str) -> str:
    """`forward_to[2]` -> `forward_to`: an item of a list is named like the list."""
    return field.split("[", 1)[0]


def problem_message(locale: str, field: str, rule: str | None, message: str) -> str:
    if locale != "de" or rule is None:
        return message
    return PROBLEMS_DE.get(f"{_root(field)}:{rule}") or PROBLEMS_DE.get(rule) or message


def field_name(locale: str, field: str) -> str:
    if locale != "de":
        return field
    return FIELDS_DE.get(_root(field), field)


def failure_detail(locale: str, code: str, detail: str) -> str:
    if locale != "de":
        return detail
    return FAILURES_DE.get(code, detail)
