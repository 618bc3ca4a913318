"""Dovecot configuration: SQL passdb/userdb/dict files and a `postmeister.conf` to `!include`.

Two passdbs are tried in order. The first verifies the main password hash; the second matches
application passwords by the SHA-256 of the typed password (Dovecot computes it with
`%{sha256:password}`), because one passdb query can return only one password to verify and a
mailbox may have any number of app passwords. There is no authentication cache
(`auth_cache_size = 0`), so a changed password, a deleted account or a revoked app password
fails on the very next login.

One dict (`postmeister`, served by Dovecot's dict process over SQL) carries the rest:
- Sieve: `sieve_before` is a dict location. Pigeonhole looks up the script id and then the
  script text in `dataplane_v1_sieve_scripts`, where the database generates each mailbox's
  script (Junk folder, autoresponder). Without `bindir` nothing is compiled to disk, so the
  script is always the one the database holds now, and no node needs a file from the
  controller. Dovecot runs with TZ set to the configured zone, so the script's
  `currentdate` tests open and close the autoresponder window at local midnight.
- Quota: the limit comes from the userdb (`quota_rule`), usage is counted in Dovecot's own
  indexes (`count` backend), and `quota_clone` copies the current usage into the
  `mailbox_usage` table after every change. A full mailbox is refused at RCPT time through
  the `quota-status` policy service, and an LMTP delivery over quota (mail to an alias, or
  a message larger than the space left) is a temporary failure, so Postfix keeps the
  message queued instead of bouncing it.

POP3 shares all of it: the passdbs, the userdb (quota, Maildir), the auth policy and the TLS
rules are global, so `protocol pop3` only holds POP3's own settings.

Brute force (IMAP, POP3, and SMTP AUTH, which Postfix hands to this Dovecot): every failure is
answered after `auth_failure_delay`; Dovecot's own per-address penalty (anvil) is left on;
and the Postmeister auth policy service (`postmeister.dataplane.authpolicy`, its numbers
there) is asked before and after each password check, slowing and then refusing repeated
failures per client address and per account.
"""

from __future__ import annotations

from dataclasses import dataclass

from postmeister.dataplane.contract import (
    CONTRACT_VERSION,
    MAILBOX_USAGE_TABLE,
    SIEVE_SCRIPTS,
)
from postmeister.dataplane.render.model import (
    AuthPolicy,
    Instance,
    NodeRole,
    PostgresDatabase,
    RenderedFile,
    Site,
    SqliteDatabase,
)

HEADER = (
    f"# Rendered by `postmeister dataplane render` (data-plane contract v{CONTRACT_VERSION}).\n"
    "# Do not edit: change the settings and render again.\n"
)

PASSDB_QUERY = (
    "SELECT username AS user, '{' || password_scheme || '}' || password_hash AS password "
    "FROM dataplane_v1_logins WHERE username = '%u'"
)
# The row is found only when the hash of the typed password matches, so the password check
# itself is already done: `nopassword` tells Dovecot to accept.
APP_PASSDB_QUERY = (
    "SELECT username AS user, NULL AS password, 'Y' AS nopassword "
    "FROM dataplane_v1_app_passwords "
    "WHERE username = '%u' AND secret_sha256 = '%{sha256:password}'"
)


def proxy_fields(node: NodeRole) -> str:
    """The passdb columns that make Dovecot proxy an IMAP or POP3 login to the mailbox's
    home node when that is another node (on one of several mail nodes, `Site.node`).

    The proxy forwards the password the client typed (Dovecot's default when the passdb
    gives no `pass`), so the home node authenticates the login itself against the same
    passdbs, app passwords included, and applies its own rules and brute-force limits; no
    master password has to be shared among the nodes. This node checks the password too
    before it proxies (the row still carries the hash, or matched the app password's), so
    a wrong guess never leaves it. The other nodes' logins arrive from `login_trusted_
    networks`, which lets them pass on the client's address and log in in plain text on
    the node network. SMTP AUTH and LMTP are never proxied (`%s` is the service): a node
    checks submission passwords itself, and Postfix routes mail by the transport map.
    Columns that are NULL (home here, or unplaced) are no fields for Dovecot.
    """
    # The node name is a DNS label (config validates it): nothing in it needs quoting.
    away = f"home_node IS NOT NULL AND home_node <> '{node.name}' AND '%s' IN ('imap', 'pop3')"
    return f"CASE WHEN {away} THEN 'Y' END AS proxy, CASE WHEN {away} THEN home_host END AS host"


def passdb_query(site: Site) -> str:
    if site.node is None:
        return PASSDB_QUERY
    return PASSDB_QUERY.replace(" FROM ", f", {proxy_fields(site.node)} FROM ", 1)


def app_passdb_query(site: Site) -> str:
    if site.node is None:
        return APP_PASSDB_QUERY
    return APP_PASSDB_QUERY.replace(" FROM ", f", {proxy_fields(site.node)} FROM ", 1)


USER_QUERY = (
    "SELECT address AS user, CASE WHEN quota_bytes IS NULL THEN NULL "
    "ELSE '*:bytes=' || CAST(quota_bytes AS TEXT) END AS quota_rule "
    "FROM dataplane_v1_mailboxes WHERE address = '%u'"
)
DOVECOT_FIRST_VALID_UID = 500
AUTH_POLICY_FILE = "dovecot/postmeister-auth-policy.conf.ext"
AUTH_POLICY_HASH_BITS = 32
# What Dovecot tells the auth policy service about each attempt (JSON keys of `Attempt`).
AUTH_POLICY_ATTRIBUTES = (
    "login=%{requested_username} pwhash=%{hashed_password} remote=%{rip} "
    "protocol=%s session_id=%{session}"
)

ITERATE_QUERY = "SELECT address AS user FROM dataplane_v1_mailboxes"

DICT_NAME = "postmeister"
SIEVE_SCRIPT_NAME = "postmeister"
QUOTA_FULL_REPLY = "552 5.2.2 Mailbox is full"


@dataclass(frozen=True)
class DictMap:
    """One dict key pattern mapped to a table or contract view (Dovecot dict-sql)."""

    pattern: str
    table: str
    value_field: str
    fields: tuple[tuple[str, str], ...] = ()
    value_type: str | None = None

    def render(self) -> str:
        lines = [
            "map {\n",
            f"  pattern = {self.pattern}\n",
            f"  table = {self.table}\n",
            "  username_field = username\n",
            f"  value_field = {self.value_field}\n",
        ]
        if self.value_type is not None:
            lines.append(f"  value_type = {self.value_type}\n")
        if self.fields:
            lines.append("  fields {\n")
            lines.extend(f"    {name} = {value}\n" for name, value in self.fields)
            lines.append("  }\n")
        lines.append("}\n")
        return "".join(lines)


DICT_MAPS: tuple[DictMap, ...] = (
    # Written by quota_clone: the current usage, replacing the old value.
    DictMap("priv/quota/storage", MAILBOX_USAGE_TABLE, "bytes", value_type="uint"),
    DictMap("priv/quota/messages", MAILBOX_USAGE_TABLE, "messages", value_type="uint"),
    # Read by Pigeonhole's dict script location: name -> script id -> script text.
    DictMap(
        "priv/sieve/name/$script_name",
        SIEVE_SCRIPTS.name,
        "script_id",
        fields=(("script_name", "$script_name"),),
    ),
    DictMap(
        "priv/sieve/data/$script_id",
        SIEVE_SCRIPTS.name,
        "script",
        fields=(("script_id", "$script_id"),),
    ),
)


# Letters, digits and the atext specials (RFC 5322 3.2.3) except '/', plus '.' and '@'.
LOGIN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@!#$%&'*+-=?^_`{|}~"


def _connection(site: Site) -> tuple[str, bool]:
    database = site.database
    if isinstance(database, SqliteDatabase):
        return f"driver = sqlite\nconnect = {database.path}\n", False
    return f"driver = pgsql\nconnect = {_pg_conninfo(database)}\n", True


def _pg_conninfo(database: PostgresDatabase) -> str:
    # Dovecot hands the string to libpq as it is (its sqlpool splits only repeated `host=`
    # words, and `host=a,b` is one). With several hosts libpq tries them in order and keeps
    # the writable one: the dict writes (quota_clone's usage), so no standby will do.
    parts = [
        f"host={database.libpq_host}",
        f"port={database.libpq_port}",
        f"dbname={database.dbname}",
        f"user={database.user}",
        "connect_timeout=2",
    ]
    if database.writer_session_attrs:
        parts.append(f"target_session_attrs={database.writer_session_attrs}")
    if database.password:
        parts.append(f"password={database.password}")
    return " ".join(parts)


def sql_file(site: Site) -> RenderedFile:
    connection, secret = _connection(site)
    content = (
        HEADER
        + connection
        + f"password_query = {passdb_query(site)}\n"
        + f"user_query = {USER_QUERY}\n"
        + f"iterate_query = {ITERATE_QUERY}\n"
    )
    return RenderedFile("dovecot/postmeister-sql.conf.ext", content, secret=secret)


def _brute_force(site: Site) -> list[str]:
    lines = [
        "# Brute force: every failed login is answered after this delay; Dovecot's anvil adds\n",
        "# its own per-address penalty (4, 8, then 15 s before each further attempt).\n",
        "auth_failure_delay = 2 secs\n",
        "auth_verbose = yes\n",
    ]
    if site.auth_policy is not None:
        path = site.config_dir / AUTH_POLICY_FILE
        lines.append("# Per address and per account: the Postmeister auth policy service.\n")
        lines.append(f"!include {path}\n")
    elif site.node is not None:
        lines.append("# The other mail nodes proxy logins here (see proxy_fields).\n")
        lines.append(f"login_trusted_networks = {' '.join(site.node.networks)}\n")
    return lines


def _login_trusted_networks(site: Site) -> tuple[str, ...]:
    """Hosts whose logins pass on the client's address: the auth policy's (webmail) and,
    on one of several mail nodes, the other nodes, which proxy their logins here."""
    policy = () if site.auth_policy is None else site.auth_policy.trusted_networks
    nodes = () if site.node is None else site.node.networks
    return (*policy, *(network for network in nodes if network not in policy))


def auth_policy_file(policy: AuthPolicy, trusted: tuple[str, ...] = ()) -> RenderedFile:
    """The auth policy settings; secret because of the hash nonce. `trusted`: the
    `login_trusted_networks` (default: the policy's own)."""
    trusted = trusted or policy.trusted_networks
    lines = [
        HEADER,
        "# Asked before and after every password check, told every outcome; if it does not\n",
        "# answer, logins go on with Dovecot's own penalty only (reject_on_fail = no).\n",
        f"auth_policy_server_url = http://{policy.endpoint}/\n",
        f"auth_policy_hash_nonce = {policy.hash_nonce}\n",
        f"auth_policy_request_attributes = {AUTH_POLICY_ATTRIBUTES}\n",
        "# The service tells guesses apart by this many bits of a hash keyed by the nonce: at\n",
        "# Dovecot's default of 12, two of 20 guesses share a hash one time in 20.\n",
        f"auth_policy_hash_truncate = {AUTH_POLICY_HASH_BITS}\n",
        "auth_policy_server_timeout_msecs = 1000\n",
        "auth_policy_reject_on_fail = no\n",
        "auth_policy_check_before_auth = yes\n",
        "auth_policy_check_after_auth = yes\n",
        "auth_policy_report_after_auth = yes\n",
    ]
    if trusted:
        lines.append("# Hosts that log in for others and pass on their addresses (webmail).\n")
        lines.append(f"login_trusted_networks = {' '.join(trusted)}\n")
    return RenderedFile(AUTH_POLICY_FILE, "".join(lines), secret=True)


def app_password_sql_file(site: Site) -> RenderedFile:
    connection, secret = _connection(site)
    content = HEADER + connection + f"password_query = {app_passdb_query(site)}\n"
    return RenderedFile("dovecot/postmeister-app-passwords-sql.conf.ext", content, secret=secret)


def dict_sql_file(site: Site) -> RenderedFile:
    """The dict-sql configuration of the `postmeister` dict (quota usage, Sieve scripts)."""
    connection, secret = _connection(site)
    # dict-sql takes the driver from the dict URI, not from this file.
    connect = connection.split("\n", 1)[1]
    content = HEADER + connect + "".join(m.render() for m in DICT_MAPS)
    return RenderedFile("dovecot/postmeister-dict-sql.conf.ext", content, secret=secret)


def _dict_uri(site: Site) -> str:
    driver = "sqlite" if isinstance(site.database, SqliteDatabase) else "pgsql"
    return f"{driver}:{site.config_dir / 'dovecot' / 'postmeister-dict-sql.conf.ext'}"


def postmeister_conf(site: Site) -> str:
    """The settings an existing Dovecot needs (`!include` it from dovecot.conf)."""
    cfg = site.config_dir / "dovecot"
    sqlite = isinstance(site.database, SqliteDatabase)
    lines = [
        HEADER,
        "auth_mechanisms = plain login\n",
        "# No cache: a revoked credential must fail on the next login, not after a TTL.\n",
        "auth_cache_size = 0\n",
        "auth_username_format = %Lu\n",
        "# Every character a local part may have (RFC 5322 atext less '/', which the address\n"
        "# rules refuse); Dovecot's default would refuse logins such as name+shop@ or o'neil@.\n"
        "# Quoted, since '#' would start a comment. The SQL drivers escape the name.\n",
        f'auth_username_chars = "{LOGIN_CHARS}"\n',
        *_brute_force(site),
        "passdb {\n  driver = sql\n",
        f"  args = {cfg / 'postmeister-sql.conf.ext'}\n}}\n",
        "passdb {\n  driver = sql\n",
        f"  args = {cfg / 'postmeister-app-passwords-sql.conf.ext'}\n}}\n",
        "userdb {\n  driver = sql\n",
        f"  args = {cfg / 'postmeister-sql.conf.ext'}\n}}\n",
        f"mail_uid = {site.mail_user}\n",
        f"mail_gid = {site.mail_user}\n",
        *_uid_range(site),
        f"mail_home = {site.mail_root}/%Ld/%Ln\n",
        "mail_location = maildir:~/Maildir\n",
        "# Postfix resolves subaddresses (per mailbox) before LMTP; a delimiter here would\n"
        "# deliver mail for an existing name+x@ mailbox to name@ instead. Set empty, so that\n"
        "# no delimiter from another included file applies.\n",
        "recipient_delimiter =\n",
        *_globals(site),
        *_tls(site),
        "service auth {\n",
        f"  unix_listener {_listener_path(site)} {{\n",
        "    mode = 0660\n    user = postfix\n    group = postfix\n  }\n",
    ]
    if sqlite:
        lines.append(
            "  # The SQLite file, its directory and -wal/-shm files belong to this group.\n"
            f"  extra_groups = {site.sqlite_group}\n"
        )
    lines.append("}\n")
    lines.extend(
        [
            "service lmtp {\n",
            "  inet_listener postmeister-lmtp {\n",
            f"    address = {site.lmtp.host}\n",
            f"    port = {site.lmtp.port}\n",
            "  }\n",
            *_node_lmtp_listener(site),
            "}\n",
            *_node_doveadm(site),
            "protocol lmtp {\n",
            f"  postmaster_address = postmaster@{site.hostname}\n",
            "  mail_plugins = $mail_plugins sieve\n",
            "}\n",
            "protocol imap {\n",
            "  mail_plugins = $mail_plugins imap_quota\n",
            "}\n",
            *_pop3(),
        ]
    )
    lines.extend(_quota_and_sieve(site))
    return "".join(lines)


def _node_lmtp_listener(site: Site) -> list[str]:
    """On one of several mail nodes: LMTP for the other nodes' Postfix, bound only to this
    node's address on the node network. LMTP has no authentication: that network must be
    private to the nodes (a firewall, or a network of their own); the address is the one
    the node registry names for this node."""
    if site.node is None:
        return []
    return [
        "  # The other mail nodes deliver their mail for mailboxes homed here.\n",
        "  inet_listener postmeister-lmtp-nodes {\n",
        f"    address = {site.node.address}\n",
        f"    port = {site.lmtp.port}\n",
        "  }\n",
    ]


# The doveadm server port on the node network (`postmeister node move` connects to it).
DOVEADM_PORT = 12345
# Where `postmeister node secret` keeps `doveadm_password` (relative to the config dir):
# root-only (0600; Dovecot's config process reads it as root), never a rendered file.
DOVEADM_INCLUDE = "dovecot/postmeister-doveadm-secret.conf.ext"


def doveadm_secret_setting(password: str) -> str:
    """The content of the doveadm secret file."""
    return f"doveadm_password = {password}\n"


def _node_doveadm(site: Site) -> list[str]:
    """On one of several mail nodes: a doveadm server on the node address, so that the
    node a mailbox moves to can copy its mail from here with dsync (`doveadm sync
    tcp:ADDRESS:PORT`). Dovecot refuses every TCP doveadm client unless it presents
    `doveadm_password`, the same on every node: it is included from its root-only file
    (`!include_try`: a node without the file yet starts, and its listener refuses all).
    Plain text like LMTP, so also only for a network private to the nodes."""
    if site.node is None:
        return []
    return [
        "# The other mail nodes copy mailboxes from here (dsync) when one moves away.\n",
        "service doveadm {\n",
        "  inet_listener postmeister-doveadm-nodes {\n",
        f"    address = {site.node.address}\n",
        f"    port = {DOVEADM_PORT}\n",
        "  }\n",
        "}\n",
        f"!include_try {site.config_dir / DOVEADM_INCLUDE}\n",
    ]


def _pop3() -> list[str]:
    """POP3 with IMAP's passdbs, userdb, quota, auth policy and TLS rules (all global)."""
    return [
        "protocol pop3 {\n",
        "  # UIDL from the IMAP UID and UIDVALIDITY (Dovecot's default, stated so that an\n",
        "  # included file cannot change it): stable while the Maildir's uidlist is, so a\n",
        "  # client that leaves mail on the server does not download it again.\n",
        "  pop3_uidl_format = %08Xu%08Xv\n",
        "  # No lock for the whole session: a client that stays connected blocks neither\n",
        "  # deliveries nor the same mailbox's IMAP sessions.\n",
        "  pop3_lock_session = no\n",
        "  # Outlook and Outlook Express hang on NULs and on a header without a blank line.\n",
        "  pop3_client_workarounds = outlook-no-nuls oe-ns-eoh\n",
        "}\n",
    ]


def _globals(site: Site) -> list[str]:
    lines = [
        "# Quota (limit from the userdb, usage copied to mailbox_usage) for every service.\n",
        "mail_plugins = $mail_plugins quota quota_clone\n",
        "# Over quota at delivery: 4xx, so Postfix keeps the message queued (no bounce).\n",
        "quota_full_tempfail = yes\n",
        "# Autoresponder windows are local dates: Sieve's currentdate reads this zone.\n",
        f"import_environment = $import_environment TZ={site.timezone}\n",
    ]
    if site.submission_host is not None:
        lines.append("# Autoreplies go out through this SMTP server.\n")
        lines.append(f"submission_host = {site.submission_host}\n")
    return lines


# TLS 1.2 or newer on every listener (IMAP STARTTLS, imaps, POP3 STLS, pop3s). The cipher
# list stays Dovecot's default, which already leaves out the weak suites.
TLS_MIN_PROTOCOL = "TLSv1.2"


def _tls(site: Site) -> list[str]:
    """The TLS policy; with certificate files also the certificate (global settings)."""
    lines = [
        "# TLS 1.2 or newer everywhere (Dovecot's default, stated so no other file lowers it).\n",
        f"ssl_min_protocol = {TLS_MIN_PROTOCOL}\n",
    ]
    if site.tls is not None:
        lines.extend(
            [
                "# Read when Dovecot (re)loads its configuration: after a renewal\n",
                "# `doveadm reload` (postmeister dataplane reload) makes new logins use it.\n",
                f"ssl_cert = <{site.tls.cert_file}\n",
                f"ssl_key = <{site.tls.key_file}\n",
            ]
        )
    return lines


def _quota_and_sieve(site: Site) -> list[str]:
    lines: list[str] = []
    lines.extend(
        [
            "plugin {\n",
            "  quota = count:User quota\n",
            "  quota_vsizes = yes\n",
            f"  quota_clone_dict = proxy::{DICT_NAME}\n",
            "  quota_status_success = DUNNO\n",
            "  quota_status_nouser = DUNNO\n",
            f"  quota_status_overquota = {QUOTA_FULL_REPLY}\n",
            "  # The script comes from the database on every delivery (no bindir: no stale\n",
            "  # compiled copy on disk).\n",
            f"  sieve_before = dict:proxy::{DICT_NAME};name={SIEVE_SCRIPT_NAME}\n",
            "  # Mail that reached the mailbox through one of its aliases is answered too.\n",
            "  sieve_vacation_use_original_recipient = yes\n",
            "}\n",
            "dict {\n",
            f"  {DICT_NAME} = {_dict_uri(site)}\n",
            "}\n",
            "service dict {\n",
            "  unix_listener dict {\n",
            "    mode = 0660\n",
            f"    user = {site.mail_user}\n",
            f"    group = {site.mail_user}\n",
            "  }\n",
        ]
    )
    # The group that may read the database (SQLite) and the files holding its password.
    lines.append(f"  extra_groups = {site.sqlite_group}\n")
    lines.extend(
        [
            "}\n",
            "service quota-status {\n",
            "  executable = quota-status -p postfix\n",
            "  inet_listener postmeister-quota-status {\n",
            f"    address = {site.quota_status.host}\n",
            f"    port = {site.quota_status.port}\n",
            "  }\n",
            "  client_limit = 1\n",
            "}\n",
        ]
    )
    return lines


def _listener_path(site: Site) -> str:
    # Dovecot wants sockets inside its base_dir named relative to it.
    instance = site.instance
    if instance is not None and site.sasl_socket.parent == instance.layout.dovecot_base:
        return site.sasl_socket.name
    return str(site.sasl_socket)


def _uid_range(site: Site) -> list[str]:
    if site.mail_uid is None or site.mail_uid >= DOVECOT_FIRST_VALID_UID:
        return []
    return [f"first_valid_uid = {site.mail_uid}\n"]


def instance_conf(site: Site, instance: Instance) -> str:
    tls = site.tls is not None
    lines = [
        HEADER,
        "# A private Dovecot instance (postmeister dataplane up): loopback only.\n",
        f"base_dir = {instance.layout.dovecot_base}\n",
        f"state_dir = {instance.layout.dovecot_state}\n",
        "instance_name = postmeister\n",
        f"listen = {instance.listen}\n",
        "protocols = imap pop3 lmtp\n",
        f"log_path = {instance.layout.log_dir / 'dovecot.log'}\n",
        "ssl = yes\n" if tls else "ssl = no\n",
    ]
    lines.extend(
        [
            "namespace inbox {\n  inbox = yes\n  separator = /\n",
            "  mailbox Drafts {\n    special_use = \\Drafts\n    auto = subscribe\n  }\n",
            "  mailbox Junk {\n    special_use = \\Junk\n    auto = subscribe\n  }\n",
            "  mailbox Sent {\n    special_use = \\Sent\n    auto = subscribe\n  }\n",
            "  mailbox Trash {\n    special_use = \\Trash\n    auto = subscribe\n  }\n",
            "}\n",
            "service imap-login {\n",
            f"  inet_listener imap {{\n    address = {instance.listen}\n",
            f"    port = {instance.imap_port}\n  }}\n",
            *_implicit_tls_listener("imaps", instance, instance.imaps_port, tls_enabled=tls),
            "}\n",
            "service pop3-login {\n",
            f"  inet_listener pop3 {{\n    address = {instance.listen}\n",
            f"    port = {instance.pop3_port}\n  }}\n",
            *_implicit_tls_listener("pop3s", instance, instance.pop3s_port, tls_enabled=tls),
            "}\n",
            "# This stack's own clients (tests, benchmarks) all come from 127.0.0.1, and Dovecot\n",
            "# 2.3's per-address penalty cannot exempt an address: one typo would slow them all.\n",
            "# It is off here; the auth policy service applies its limits per address (127.0.0.1\n",
            "# trusted) and per account. A real server keeps this penalty on top.\n",
            "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n",
            f"!include {site.config_dir / 'dovecot' / 'postmeister.conf'}\n",
        ]
    )
    return "".join(lines)


def _implicit_tls_listener(
    name: str, instance: Instance, port: int | None, *, tls_enabled: bool
) -> list[str]:
    if not tls_enabled or port is None:
        return [f"  inet_listener {name} {{\n    port = 0\n  }}\n"]
    return [
        f"  inet_listener {name} {{\n    address = {instance.listen}\n",
        f"    port = {port}\n    ssl = yes\n  }}\n",
    ]


def render_dovecot(site: Site) -> list[RenderedFile]:
    files = [
        sql_file(site),
        app_password_sql_file(site),
        dict_sql_file(site),
        RenderedFile("dovecot/postmeister.conf", postmeister_conf(site)),
    ]
    if site.auth_policy is not None:
        files.append(auth_policy_file(site.auth_policy, _login_trusted_networks(site)))
    if site.instance is not None:
        files.append(RenderedFile("dovecot/dovecot.conf", instance_conf(site, site.instance)))
    return files
