"""Dovecot configuration: SQL passdb/userdb files and a `postmeister.conf` to `!include`.

Two passdbs are tried in order. The first verifies the main password hash; the second matches
application passwords by the SHA-256 of the typed password (Dovecot computes it with
`%{sha256:password}`), because one passdb query can return only one password to verify and a
mailbox may have any number of app passwords. There is no authentication cache
(`auth_cache_size = 0`), so a changed password, a deleted account or a revoked app password
fails on the very next login.
"""

from __future__ import annotations

from postmeister.dataplane.contract import CONTRACT_VERSION
from postmeister.dataplane.render.model import (
    Instance,
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
USER_QUERY = (
    "SELECT address AS user, CASE WHEN quota_bytes IS NULL THEN NULL "
    "ELSE '*:bytes=' || CAST(quota_bytes AS TEXT) END AS quota_rule "
    "FROM dataplane_v1_mailboxes WHERE address = '%u'"
)
DOVECOT_FIRST_VALID_UID = 500

ITERATE_QUERY = "SELECT address AS user FROM dataplane_v1_mailboxes"


def _connection(site: Site) -> tuple[str, bool]:
    database = site.database
    if isinstance(database, SqliteDatabase):
        return f"driver = sqlite\nconnect = {database.path}\n", False
    return f"driver = pgsql\nconnect = {_pg_conninfo(database)}\n", True


def _pg_conninfo(database: PostgresDatabase) -> str:
    parts = [
        f"host={database.host}",
        f"port={database.port}",
        f"dbname={database.dbname}",
        f"user={database.user}",
        "connect_timeout=2",
    ]
    if database.password:
        parts.append(f"password={database.password}")
    return " ".join(parts)


def sql_file(site: Site) -> RenderedFile:
    connection, secret = _connection(site)
    content = (
        HEADER
        + connection
        + f"password_query = {PASSDB_QUERY}\n"
        + f"user_query = {USER_QUERY}\n"
        + f"iterate_query = {ITERATE_QUERY}\n"
    )
    return RenderedFile("dovecot/postmeister-sql.conf.ext", content, secret=secret)


def app_password_sql_file(site: Site) -> RenderedFile:
    connection, secret = _connection(site)
    content = HEADER + connection + f"password_query = {APP_PASSDB_QUERY}\n"
    return RenderedFile("dovecot/postmeister-app-passwords-sql.conf.ext", content, secret=secret)


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
        "recipient_delimiter = +\n",
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
            "  }\n}\n",
            "protocol lmtp {\n",
            f"  postmaster_address = postmaster@{site.hostname}\n",
            "}\n",
        ]
    )
    return "".join(lines)


def _listener_path(site: Site) -> str:
    # Dovecot wants sockets inside its base_dir named relative to it.
    instance = site.instance
    if instance is not None and site.sasl_socket.parent == instance.dovecot_base:
        return site.sasl_socket.name
    return str(site.sasl_socket)


def _uid_range(site: Site) -> list[str]:
    if site.mail_uid is None or site.mail_uid >= DOVECOT_FIRST_VALID_UID:
        return []
    return [f"first_valid_uid = {site.mail_uid}\n"]


def instance_conf(site: Site, instance: Instance) -> str:
    tls = site.tls
    lines = [
        HEADER,
        "# A private Dovecot instance (postmeister dataplane up): loopback only.\n",
        f"base_dir = {instance.dovecot_base}\n",
        f"state_dir = {instance.dovecot_state}\n",
        "instance_name = postmeister\n",
        f"listen = {instance.listen}\n",
        "protocols = imap lmtp\n",
        f"log_path = {instance.log_dir / 'dovecot.log'}\n",
        "ssl = yes\n" if tls else "ssl = no\n",
    ]
    if tls:
        lines.append(f"ssl_cert = <{tls.cert_file}\nssl_key = <{tls.key_file}\n")
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
            "  inet_listener imaps {\n    port = 0\n  }\n}\n",
            f"!include {site.config_dir / 'dovecot' / 'postmeister.conf'}\n",
        ]
    )
    return "".join(lines)


def render_dovecot(site: Site) -> list[RenderedFile]:
    files = [
        sql_file(site),
        app_password_sql_file(site),
        RenderedFile("dovecot/postmeister.conf", postmeister_conf(site)),
    ]
    if site.instance is not None:
        files.append(RenderedFile("dovecot/dovecot.conf", instance_conf(site, site.instance)))
    return files
