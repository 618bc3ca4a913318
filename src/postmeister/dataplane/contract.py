"""The data-plane contract: the SQL views that Postfix, Dovecot and the sender milter read.

Mail servers never read the controller's tables. They read these views, whose names carry a
version (`dataplane_v1_*`). The tables behind them may change freely as long as a migration
redefines the views with the same meaning; a change of meaning (a renamed or dropped column,
another row set) needs a new version (`dataplane_v2_*`) created beside the old one, so that
nodes still rendered for v1 keep working while they are upgraded one by one.

Each view is declared as data: a name, its columns with their meaning, and its SELECT per SQL
dialect. Most views are portable SQL and use one statement for every dialect; where SQLite and
PostgreSQL differ (date formatting), the view names a statement per dialect. The contract tests
insert the same rows on both databases and compare every view row by row.

Conventions that hold for every view, on every dialect:
- addresses and login names are lowercase `local@a-label-domain` strings. The tables store
  them in that canonical form already (`postmeister.canonical`, the one form every writer
  and both milters use), so the views pass the columns through untouched: a `lower()` here
  would hide the unique indexes from the planner and turn every Postfix lookup into a scan
  of all addresses;
- flags are the integers 0 and 1 (never SQL booleans: SQLite has none, and Postfix and
  Dovecot compare them as text);
- dates are `YYYY-MM-DD` text;
- a view returns no row for something that does not exist (never a row with NULLs);
- `customer_id` columns are opaque tenant keys, only ever compared with each other;
- compound views use UNION ALL, never UNION: SQLite cannot push a lookup's `WHERE` into a
  UNION (it de-duplicates first, scanning every address: 420 ms per RCPT at 1,000,000
  addresses), but it can into UNION ALL. Duplicates cannot arise in the alias view (a
  target never repeats and never is the address itself: the services refuse both); in the
  sender view a login that whitelists its own address appears twice, which Postfix and the
  milter treat like once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

CONTRACT_VERSION = 1


@dataclass(frozen=True)
class Column:
    name: str
    meaning: str


@dataclass(frozen=True)
class View:
    """One view of the contract.

    `select` is the portable statement; `dialect_select` overrides it for a SQLAlchemy dialect
    name (`sqlite`, `postgresql`) where the portable form does not exist.
    """

    name: str
    purpose: str
    columns: tuple[Column, ...]
    select: str
    dialect_select: Mapping[str, str] = field(default_factory=dict)

    def sql_for(self, dialect: str) -> str:
        return self.dialect_select.get(dialect, self.select).strip()

    def create_statement(self, dialect: str) -> str:
        return f"CREATE VIEW {self.name} AS\n{self.sql_for(dialect)}"

    def drop_statement(self) -> str:
        return f"DROP VIEW IF EXISTS {self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


DOMAINS = View(
    name="dataplane_v1_domains",
    purpose=(
        "Domains whose mail this installation accepts (Postfix virtual_mailbox_domains), and "
        "the customer hosting each: the tenant boundary of `SENDER_LOOKUP`."
    ),
    columns=(
        Column("domain", "the domain as IDNA A-label, lowercase"),
        Column("customer_id", "the customer that hosts the domain (opaque, compare only)"),
    ),
    select="SELECT d.name AS domain, d.customer_id AS customer_id FROM domains d",
)

MAILBOXES = View(
    name="dataplane_v1_mailboxes",
    purpose=(
        "Addresses that store mail (Postfix virtual_mailbox_maps, Dovecot userdb). "
        "Mail paths are not in the database: each node derives them from domain and local part."
    ),
    columns=(
        Column("address", "the mailbox address, which is also its login name"),
        Column("domain", "the domain part (A-label)"),
        Column("local_part", "the part before the @"),
        Column("quota_bytes", "storage limit in bytes; NULL means no limit"),
        Column(
            "subaddress_extension",
            "1: mail to local+anything@domain (the part before the first '+') comes here too,"
            " unless that whole address exists itself (`SUBADDRESS_LOOKUP`)",
        ),
        Column(
            "home_node",
            "the name of the mail node that stores the mailbox; NULL: unplaced (every node"
            " serves it locally, as on a single-node installation)",
        ),
        Column("home_host", "the address other nodes reach the home node at; NULL: unplaced"),
        Column("home_lmtp_port", "the home node's LMTP port; NULL: unplaced"),
    ),
    select="""
SELECT a.address AS address,
       d.name AS domain,
       a.local_part AS local_part,
       a.quota_bytes AS quota_bytes,
       CASE WHEN a.subaddress_extension THEN 1 ELSE 0 END AS subaddress_extension,
       n.name AS home_node,
       n.address AS home_host,
       n.lmtp_port AS home_lmtp_port
FROM addresses a JOIN domains d ON d.id = a.domain_id
LEFT JOIN mail_nodes n ON n.id = a.home_node_id
WHERE a.kind = 'mailbox'
""",
)

ALIASES = View(
    name="dataplane_v1_aliases",
    purpose=(
        "Where mail to an address goes instead of (or besides) a mailbox (Postfix "
        "virtual_alias_maps): one row per recipient. A forward has a row for each target. "
        "A mailbox with targets also has a row pointing at itself, so that it keeps a copy; "
        "a mailbox without targets has no row at all."
    ),
    columns=(
        Column("address", "the address mail was sent to"),
        Column("target", "one recipient the mail is delivered to"),
    ),
    select="""
SELECT a.address AS address, t.target AS target
FROM addresses a JOIN forward_targets t ON t.address_id = a.id
UNION ALL
SELECT a.address AS address, a.address AS target
FROM addresses a
WHERE a.kind = 'mailbox' AND EXISTS (SELECT 1 FROM forward_targets t WHERE t.address_id = a.id)
""",
)

ALIAS_DOMAINS = View(
    name="dataplane_v1_alias_domains",
    purpose=(
        "Alias domains (Postfix virtual_alias_maps, `ALIAS_DOMAIN_LOOKUP`): mail to "
        "x@alias_domain goes where x@domain goes. One level only, and both domains belong to "
        "the same customer (the controller refuses anything else), so `SENDER_LOOKUP`'s "
        "tenant boundary is untouched. Each alias domain is also a row of dataplane_v1_domains."
    ),
    columns=(
        Column("alias_domain", "the alias domain (A-label)"),
        Column("domain", "the domain it mirrors (A-label)"),
    ),
    select="""
SELECT a.name AS alias_domain, m.name AS domain
FROM domains a JOIN domains m ON m.id = a.alias_of_id
""",
)

CATCHALL = View(
    name="dataplane_v1_catchall",
    purpose=(
        "Catch-all targets (Postfix virtual_alias_maps, key `@domain`): where mail to a local "
        "part that is no address of the domain goes, one row per target. An alias domain has "
        "no catch-all of its own: it has its main domain's rows under its own name. Postfix "
        "asks `@domain` only after the whole address found nothing in any alias map, which is "
        "why every existing address answers that lookup itself (see render/postfix.py)."
    ),
    columns=(
        Column("domain", "the domain (A-label) whose unknown local parts are caught"),
        Column("target", "one recipient the mail is delivered to"),
    ),
    select="""
SELECT d.name AS domain, c.target AS target
FROM domains d JOIN catchall_targets c ON c.domain_id = d.id
UNION ALL
SELECT a.name AS domain, c.target AS target
FROM domains a JOIN catchall_targets c ON c.domain_id = a.alias_of_id
""",
)

LOGINS = View(
    name="dataplane_v1_logins",
    purpose=(
        "Accounts that may log in with their main password (Dovecot passdb for IMAP and SMTP "
        "AUTH; Postfix check_sasl_access for submission_disabled). A mailbox of a suspended "
        "customer has no row: it cannot log in, so it cannot send either, while mail for it "
        "is still accepted and delivered (`MAILBOXES` keeps it)."
    ),
    columns=(
        Column("username", "the login name: the mailbox address"),
        Column("password_hash", "crypt-format hash ($argon2id$, $6$, $y$, $2y$, $1$, ...)"),
        Column(
            "password_scheme",
            "the Dovecot scheme that verifies password_hash: ARGON2ID, ARGON2I or CRYPT",
        ),
        Column("submission_disabled", "1: may log in and read mail, but not send"),
        Column(
            "home_node",
            "the name of the mail node that stores the mailbox; NULL: unplaced (every node"
            " serves it locally, as on a single-node installation)",
        ),
        Column("home_host", "the address other nodes reach the home node at; NULL: unplaced"),
    ),
    select="""
SELECT a.address AS username,
       a.password_hash AS password_hash,
       CASE
         WHEN substr(a.password_hash, 1, 10) = '$argon2id$' THEN 'ARGON2ID'
         WHEN substr(a.password_hash, 1, 9) = '$argon2i$' THEN 'ARGON2I'
         ELSE 'CRYPT'
       END AS password_scheme,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled,
       n.name AS home_node,
       n.address AS home_host
FROM addresses a
JOIN domains d ON d.id = a.domain_id
JOIN customers c ON c.id = d.customer_id
LEFT JOIN mail_nodes n ON n.id = a.home_node_id
WHERE a.kind = 'mailbox' AND a.password_hash IS NOT NULL AND a.password_hash <> ''
  AND c.suspended_at IS NULL
""",
)

APP_PASSWORDS = View(
    name="dataplane_v1_app_passwords",
    purpose=(
        "Application passwords (Dovecot's second passdb). The secret is never stored: "
        "secret_sha256 is the lowercase hex SHA-256 of the UTF-8 secret, which Dovecot "
        "computes from the typed password with %{sha256:password} and matches by equality, "
        "so any number of app passwords of one account can be active at once. Like "
        "`LOGINS`, no row for a mailbox of a suspended customer."
    ),
    columns=(
        Column("username", "the login name of the mailbox the app password belongs to"),
        Column("secret_sha256", "lowercase hex SHA-256 of the app password"),
        Column("app_password_id", "the app password's id (for last-used bookkeeping)"),
        Column("submission_disabled", "copied from the mailbox: app passwords obey it too"),
        Column(
            "home_node",
            "the name of the mail node that stores the mailbox; NULL: unplaced (every node"
            " serves it locally, as on a single-node installation)",
        ),
        Column("home_host", "the address other nodes reach the home node at; NULL: unplaced"),
    ),
    select="""
SELECT a.address AS username,
       p.secret_hash AS secret_sha256,
       p.id AS app_password_id,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled,
       n.name AS home_node,
       n.address AS home_host
FROM app_passwords p JOIN addresses a ON a.id = p.address_id
JOIN domains d ON d.id = a.domain_id
JOIN customers c ON c.id = d.customer_id
LEFT JOIN mail_nodes n ON n.id = a.home_node_id
WHERE a.kind = 'mailbox' AND c.suspended_at IS NULL
""",
)

SENDER_LOGINS = View(
    name="dataplane_v1_sender_logins",
    purpose=(
        "Who may send as whom (Postfix smtpd_sender_login_maps for the envelope sender, the "
        "Postmeister milter for the header From). Every mailbox owns its own address; its "
        "spoofing whitelist adds the other rows, as written. Never query it on its own: "
        "`SENDER_LOOKUP` is the only question to ask, because a row only counts for a sender "
        "whose domain is not hosted by another customer, which no row can know in advance "
        "(a domain may be added by another customer after the whitelist was set)."
    ),
    columns=(
        Column("sender", "an exact address, a bare domain, or '*' for any sender"),
        Column("login", "the login name that may use it"),
        Column("customer_id", "the login's customer (compared with dataplane_v1_domains)"),
    ),
    select="""
SELECT a.address AS sender, a.address AS login, d.customer_id AS customer_id
FROM addresses a JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
UNION ALL
SELECT s.pattern AS sender, a.address AS login, d.customer_id AS customer_id
FROM sender_permissions s
JOIN addresses a ON a.id = s.address_id
JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
""",
)

SENDER_LOOKUP = (
    "SELECT s.login FROM dataplane_v1_sender_logins s"
    " WHERE s.sender IN ({address}, {domain}, '*')"
    " AND NOT EXISTS (SELECT 1 FROM dataplane_v1_domains h"
    " WHERE h.domain = {domain} AND h.customer_id <> s.customer_id)"
)
"""The logins that may use the sender `{address}` (canonical) of domain `{domain}`.

The whole whitelist rule in one statement, shared by Postfix's `smtpd_sender_login_maps`
(`{address}` = `'%u@%d'`, `{domain}` = `'%d'`) and the sender milter (bound parameters):
a login may use a sender when a row names the sender's address, its domain or `*`, AND the
sender's domain is not hosted by a customer other than the login's. So `*` covers every
address of domains hosted nowhere here or by the login's own customer; an entry naming
another customer's address or domain never counts, whenever that domain was added.
Indexes used: `sender_permissions.pattern`, `addresses.address`, `domains.name`.
"""

SUBADDRESS_LOOKUP: Mapping[str, str] = {
    dialect: (
        "SELECT m.address FROM dataplane_v1_mailboxes m"
        " WHERE m.address = {base} || '@' || {domain} AND {has_plus}"
        " AND m.subaddress_extension = 1"
        " AND NOT EXISTS (SELECT 1 FROM dataplane_v1_mailboxes x WHERE x.address = {address})"
        " AND NOT EXISTS (SELECT 1 FROM dataplane_v1_aliases y WHERE y.address = {address})"
    )
    .replace("{base}", base)
    .replace("{has_plus}", has_plus)
    for dialect, base, has_plus in (
        ("sqlite", "substr({local}, 1, instr({local}, '+') - 1)", "instr({local}, '+') > 1"),
        ("postgresql", "split_part({local}, '+', 1)", "strpos({local}, '+') > 1"),
    )
}
"""Per dialect: the mailbox that `{local}@{domain}` (= `{address}`) reaches by subaddressing.

Subaddressing is the mailbox's own switch, so Postfix's global `recipient_delimiter` is not
set (it would deliver `alice+x` to every alice, and let alice send as `alice+x`). Instead
Postfix's alias lookup asks this: when the local part has a `+` after its first character,
the mailbox named by the part before the first `+` has `subaddress_extension` on, and the
whole address is neither a mailbox nor a forward of its own, the mail is rewritten to that
mailbox (and then follows its forwards like mail to the mailbox itself). An address that
exists always wins. Indexes used: `addresses.address` (three equality lookups).
"""

ALIAS_DOMAIN_LOOKUP = (
    "SELECT {local} || '@' || r.domain FROM dataplane_v1_alias_domains r"
    " WHERE r.alias_domain = {domain}"
    " AND (EXISTS (SELECT 1 FROM dataplane_v1_mailboxes m WHERE m.address = {local} || '@' ||"
    " r.domain) OR EXISTS (SELECT 1 FROM dataplane_v1_aliases f WHERE f.address = {local}"
    " || '@' || r.domain))"
    " AND NOT EXISTS (SELECT 1 FROM dataplane_v1_mailboxes x WHERE x.address = {address})"
    " AND NOT EXISTS (SELECT 1 FROM dataplane_v1_aliases y WHERE y.address = {address})"
)
"""The address `{local}@{domain}` (= `{address}`) is rewritten to when `{domain}` is an alias
domain: the same local part at the main domain, when that address exists there (a mailbox,
or an address with forward targets); Postfix then resolves it like mail sent to it directly.
An unknown local part gets no row, so it falls to the catch-all (the main domain's, see
`CATCHALL`) or is refused with 550 at RCPT time. An address the alias domain holds itself
wins. Indexes used: `domains.name`, `domains.id`, `addresses.address`.
"""

RECIPIENT_POLICIES = View(
    name="dataplane_v1_recipient_policies",
    purpose="Per-address spam policy for the antispam stage (rspamd settings, Sieve).",
    columns=(
        Column("address", "a hosted address, mailbox or forward"),
        Column("kind", "mailbox or forward"),
        Column("antispam", "reject | junk-folder | subject-rewrite | none"),
    ),
    select="""
SELECT a.address AS address, a.kind AS kind, a.antispam AS antispam
FROM addresses a
""",
)

AUTORESPONDERS = View(
    name="dataplane_v1_autoresponders",
    purpose=(
        "Vacation replies (Sieve vacation). The data plane applies the date window itself "
        "(local midnight in the configured time zone), so replies start and stop on time even "
        "while the controller is down; `active` is the owner's switch."
    ),
    columns=(
        Column("username", "the mailbox"),
        Column("text", "the reply body, verbatim"),
        Column("active", "1 when switched on"),
        Column("activates", "first day (YYYY-MM-DD) it answers, or NULL"),
        Column("expires", "first day (YYYY-MM-DD) it no longer answers, or NULL"),
        Column("version", "changes whenever the row changes (cache key for compiled scripts)"),
    ),
    select="""
SELECT a.address AS username,
       a2.text AS text,
       CASE WHEN a2.active THEN 1 ELSE 0 END AS active,
       substr(a2.activates, 1, 10) AS activates,
       substr(a2.expires, 1, 10) AS expires,
       CAST(a2.address_id AS TEXT) || '-'
         || strftime('%Y%m%d%H%M%f', a2.updated_at) AS version
FROM autoresponders a2 JOIN addresses a ON a.id = a2.address_id
WHERE a.kind = 'mailbox'
""",
    dialect_select={
        "postgresql": """
SELECT a.address AS username,
       a2.text AS text,
       CASE WHEN a2.active THEN 1 ELSE 0 END AS active,
       to_char(a2.activates, 'YYYY-MM-DD') AS activates,
       to_char(a2.expires, 'YYYY-MM-DD') AS expires,
       CAST(a2.address_id AS TEXT) || '-'
         || to_char(a2.updated_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS') AS version
FROM autoresponders a2 JOIN addresses a ON a.id = a2.address_id
WHERE a.kind = 'mailbox'
""",
    },
)


def _sieve_script_select(*, lf: str, cr: str, last_char: str, day: str) -> str:
    """The SELECT of `SIEVE_SCRIPTS` in one dialect.

    `lf`/`cr` are the dialect's expressions for a line feed and a carriage return,
    `last_char` and `day` templates (`{}` is the column) for the last character of a string
    and for a date as `YYYY-MM-DD`.

    The autoresponder text becomes the body of a Sieve multi-line string (RFC 5228 2.4.2):
    line breaks are normalised to LF, every line that starts with a dot gets a second one
    (dot-stuffing, which the Sieve parser removes again), and a line holding a single dot
    ends the string. Nothing else has a meaning inside a multi-line string as long as the
    script requires neither `variables` nor `encoded-character`, so any text (quotes,
    backslashes, Sieve code, `${...}`, non-ASCII) comes back verbatim. The only values
    spliced into the script as code are the two dates, formatted right here.
    """
    stuffed = (
        "substr(replace(\n"
        f"                  {lf} || replace(replace(text, {cr} || {lf}, {lf}),\n"
        f"                                  {cr}, {lf}),\n"
        f"                  {lf} || '.', {lf} || '..'),\n"
        "                2)"
    )
    ends_with_lf = last_char.format("r.body") + f" = {lf}"
    # Only the dialect fragments above are interpolated, never a value.
    return f"""
SELECT a.address AS username,
       'postmeister' AS script_name,
       a.address AS script_id,
       'require ["date", "fileinto", "mailbox", "relational", "vacation"];' || {lf}
       || CASE WHEN a.antispam = 'junk-folder' THEN
            'if header :is "X-Spam" "Yes" {{' || {lf}
            || '  fileinto :create "Junk";' || {lf} || '  stop;' || {lf} || '}}' || {lf}
          ELSE '' END
       || CASE WHEN r.active THEN
            'if allof(not header :is "X-Spam" "Yes"'
            || CASE WHEN r.activates IS NULL THEN ''
                 ELSE ', currentdate :value "ge" "date" "' || r.activates || '"' END
            || CASE WHEN r.expires IS NULL THEN ''
                 ELSE ', currentdate :value "lt" "date" "' || r.expires || '"' END
            || ') {{' || {lf} || '  vacation :days 7 text:' || {lf}
            || r.body
            || CASE WHEN r.body = '' OR {ends_with_lf} THEN '' ELSE {lf} END
            || '.' || {lf} || ';' || {lf} || '}}' || {lf}
          ELSE '' END AS script
FROM addresses a
LEFT JOIN (
  SELECT address_id,
         active,
         {day.format("activates")} AS activates,
         {day.format("expires")} AS expires,
         {stuffed} AS body
  FROM autoresponders
) r ON r.address_id = a.id
WHERE a.kind = 'mailbox'
"""  # noqa: S608


SIEVE_SCRIPTS = View(
    name="dataplane_v1_sieve_scripts",
    purpose=(
        "The Sieve script Dovecot runs before delivering into a mailbox (Pigeonhole's dict "
        "script location, read through Dovecot's dict-sql: sieve_before = dict:...). One row "
        "per mailbox: files mail marked as spam into Junk for the junk-folder policy, and "
        "answers with the autoresponder inside its date window. The window is checked by "
        "Sieve's `currentdate` in Dovecot's local time zone (TZ, set by the rendered "
        "configuration), so it opens and closes at local midnight without the controller. "
        "Generated from the tables on every lookup: no file, nothing to distribute."
    ),
    columns=(
        Column("username", "the mailbox (the Sieve user)"),
        Column("script_name", "always 'postmeister' (the name in the sieve_before location)"),
        Column("script_id", "the script's data id in the dict (the mailbox address)"),
        Column("script", "the complete Sieve script"),
    ),
    select=_sieve_script_select(
        lf="char(10)", cr="char(13)", last_char="substr({}, -1)", day="substr({}, 1, 10)"
    ),
    dialect_select={
        "postgresql": _sieve_script_select(
            lf="chr(10)", cr="chr(13)", last_char="right({}, 1)", day="to_char({}, 'YYYY-MM-DD')"
        ),
    },
)


def _dkim_keys(algorithm: str) -> View:
    return View(
        name=f"dataplane_v1_dkim_{algorithm}_keys",
        purpose=(
            f"The {algorithm} DKIM key each domain signs with (OpenDKIM's KeyTable, keyed by "
            "domain; its policy script asks for the From domain). One row per domain at "
            "most: a rotation retires the old key, which is then only published in DNS, "
            "never used to sign. The private key is PEM: whoever may read this view can "
            "sign as the domain, so only the signer's group may read the database."
        ),
        columns=(
            Column("domain", "the signing domain (A-label), d= of the signature"),
            Column("selector", "s= of the signature; the TXT record is selector._domainkey.domain"),
            Column("private_key", f"the {algorithm} private key, PEM (PKCS #8)"),
        ),
        select=f"""
SELECT d.name AS domain, k.selector AS selector, k.private_key AS private_key
FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
WHERE k.algorithm = '{algorithm}' AND k.retired_at IS NULL
""",  # noqa: S608 - only the two literal algorithm names are interpolated
    )


DKIM_RSA_KEYS = _dkim_keys("rsa")
DKIM_ED25519_KEYS = _dkim_keys("ed25519")
DKIM_KEYS: Mapping[str, View] = {"rsa": DKIM_RSA_KEYS, "ed25519": DKIM_ED25519_KEYS}

SENDING_LIMITS = View(
    name="dataplane_v1_sending_limits",
    purpose=(
        "The sending limits of each mailbox, read by the sender milter on submission: its "
        "own (`sending_limit_overrides`) where set, else its package's, and the limits of "
        "its domain's mailboxes together. Here NULL means 'no limit', not 'unknown'."
    ),
    columns=(
        Column("username", "the login name: the mailbox address"),
        Column("domain", "the mailbox's domain (A-label): the subject of the domain limits"),
        Column("messages_per_hour", "messages the mailbox may send per hour (UTC)"),
        Column("messages_per_day", "messages the mailbox may send per day (UTC)"),
        Column("recipients_per_hour", "recipients of all its messages per hour"),
        Column("recipients_per_day", "recipients of all its messages per day"),
        Column("domain_messages_per_hour", "messages of all the domain's mailboxes per hour"),
        Column("domain_messages_per_day", "messages of all the domain's mailboxes per day"),
        Column("domain_recipients_per_hour", "recipients of the domain's mailboxes per hour"),
        Column("domain_recipients_per_day", "recipients of the domain's mailboxes per day"),
    ),
    select="""
SELECT a.address AS username,
       d.name AS domain,
       COALESCE(o.messages_per_hour, p.mailbox_messages_per_hour) AS messages_per_hour,
       COALESCE(o.messages_per_day, p.mailbox_messages_per_day) AS messages_per_day,
       COALESCE(o.recipients_per_hour, p.mailbox_recipients_per_hour) AS recipients_per_hour,
       COALESCE(o.recipients_per_day, p.mailbox_recipients_per_day) AS recipients_per_day,
       p.domain_messages_per_hour AS domain_messages_per_hour,
       p.domain_messages_per_day AS domain_messages_per_day,
       p.domain_recipients_per_hour AS domain_recipients_per_hour,
       p.domain_recipients_per_day AS domain_recipients_per_day
FROM addresses a
JOIN domains d ON d.id = a.domain_id
JOIN packages p ON p.id = d.package_id
LEFT JOIN sending_limit_overrides o ON o.address_id = a.id
WHERE a.kind = 'mailbox'
""",
)

VIEWS: tuple[View, ...] = (
    DOMAINS,
    MAILBOXES,
    ALIASES,
    ALIAS_DOMAINS,
    CATCHALL,
    LOGINS,
    APP_PASSWORDS,
    SENDER_LOGINS,
    RECIPIENT_POLICIES,
    AUTORESPONDERS,
    SIEVE_SCRIPTS,
    DKIM_RSA_KEYS,
    DKIM_ED25519_KEYS,
    SENDING_LIMITS,
)

# Written BY the data plane (Dovecot's quota dict), read by the controller. A table, not a
# view, because Dovecot writes it; listed here because it is part of the same contract.
MAILBOX_USAGE_TABLE = "mailbox_usage"

# Written BY the data plane (the sender milter of every mail node), read by the controller:
# the counters the sending limits are judged against, and the limits that deferred mail.
# Statements with `{name}` placeholders (`dataplane.milter.lookups` binds them per dialect);
# `INSERT ... ON CONFLICT ... RETURNING` is the same on SQLite (3.35+) and PostgreSQL.
# One row per subject and period: concurrent submissions on several nodes add up in the
# database (a row lock on PostgreSQL, the write lock on SQLite), never in a node's memory.
SENDING_COUNTERS_TABLE = "sending_counters"
SENDING_LIMIT_HITS_TABLE = "sending_limit_hits"
COUNT_SENDING = f"""
INSERT INTO {SENDING_COUNTERS_TABLE} (subject, period, messages, recipients)
VALUES ({{subject}}, {{period}}, 1, {{recipients}})
ON CONFLICT (subject, period) DO UPDATE
SET messages = {SENDING_COUNTERS_TABLE}.messages + 1,
    recipients = {SENDING_COUNTERS_TABLE}.recipients + excluded.recipients
RETURNING messages, recipients
"""  # noqa: S608 (table names are constants; values are bound)
RECORD_LIMIT_HIT = f"""
INSERT INTO {SENDING_LIMIT_HITS_TABLE} (login, subject, period, limit_name, limit_value, hit_at)
VALUES ({{login}}, {{subject}}, {{period}}, {{limit_name}}, {{limit_value}}, CURRENT_TIMESTAMP)
ON CONFLICT (subject, period, limit_name) DO NOTHING
"""  # noqa: S608
