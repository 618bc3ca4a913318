"""OpenDKIM, the DKIM signer on the submission services: its configuration and policy script.

Pure: a `Site` in, files out. One OpenDKIM process per algorithm (`Site.dkim_signers`):
OpenDKIM 2.11 signs every message with the one `SignatureAlgorithm` of its process (an
Ed25519 key in an rsa-sha256 process fails with "d2i_PrivateKey_bio() failed"), and its SQL
SigningTable returns one key name per lookup, so two signatures per message (RSA + Ed25519)
need two processes, each a milter in the submission chain after the sender milter.

Keys come from the database like everything else the data plane reads: the KeyTable is the
contract view `dataplane_v1_dkim_<algorithm>_keys` through OpenDBX, keyed by domain, so a
second mail node needs nothing but the database and these files. There is no SigningTable:
the policy script (`SetupPolicyScript`) asks for the key of the header From's domain, which
the sender milter before it has already checked against the login. A From domain without a
key (a whitelisted outside domain) is sent unsigned (`On-KeyNotFound accept`); a database
error is a 4xx, so no hosted domain's mail leaves unsigned.

OpenDBX's SQLite backend opens `<host><dbase>` literally (it concatenates them, and a DSN
cannot contain a `/` in either part), so the path is relative: OpenDKIM runs with the
database's directory as its working directory (`stack.py`, the systemd unit) and the file
name is split over the two DSN parts.
"""

from __future__ import annotations

from typing import Final

from postmeister.dataplane.contract import CONTRACT_VERSION, DKIM_KEYS
from postmeister.dataplane.render.model import (
    Database,
    DkimSigner,
    PostgresDatabase,
    RenderedFile,
    Site,
    SqliteDatabase,
)

HEADER: Final = (
    f"# Rendered by `postmeister dataplane render` (data-plane contract v{CONTRACT_VERSION}).\n"
    "# Do not edit: change the settings and render again.\n"
)
SIGNATURE_ALGORITHMS: Final = {"rsa": "rsa-sha256", "ed25519": "ed25519-sha256"}
# Characters that end a part of an OpenDKIM DSN (`dkimf_db_nextpunct`).
_DSN_PUNCTUATION: Final = frozenset(":/@+?=")


class UnrenderableDsn(ValueError):
    """The database cannot be named in an OpenDKIM DSN (a character it cannot quote)."""


def config_path(algorithm: str) -> str:
    return f"opendkim/{algorithm}.conf"


def script_path() -> str:
    return "opendkim/sign.lua"


def _plain(value: str, what: str, *, secret: bool = False) -> str:
    if not value or _DSN_PUNCTUATION & set(value):
        shown = "" if secret else f": {value!r}"  # never a password in a message
        raise UnrenderableDsn(
            f"OpenDKIM cannot read a DSN whose {what} is empty or contains one of "
            f"{''.join(sorted(_DSN_PUNCTUATION))}{shown}"
        )
    return value


def database_dsn(database: Database, view: str) -> str:
    """The OpenDKIM data set that reads `view` (KeyTable: domain -> domain, selector, key)."""
    table = f"table={view}?keycol=domain?datacol=domain,selector,private_key"
    if isinstance(database, SqliteDatabase):
        name = _plain(database.path.name, "SQLite file name")
        if len(name) < 2:
            raise UnrenderableDsn(f"SQLite file name too short for a DSN: {name!r}")
        # host + dbase = the file name, relative to the working directory (see above).
        return f"dsn:sqlite3://{name[0]}/{name[1:]}/{table}"
    assert isinstance(database, PostgresDatabase)
    credentials = _plain(database.user, "user")
    if database.password:
        credentials += ":" + _plain(database.password, "password", secret=True)
    # Several hosts: OpenDBX's pgsql backend quotes host and port into a libpq conninfo
    # (`host='a,b' port='p,q'`), and libpq 10+ reads those as lists, trying them in order.
    # OpenDKIM only reads keys, so any host that answers will do (no target_session_attrs:
    # the DSN has no place for it).
    host = _plain(database.libpq_host, "host")
    dbname = _plain(database.dbname, "database name")
    return f"dsn:pgsql://{credentials}@{database.libpq_port}+{host}/{dbname}/{table}"


def working_directory(database: Database) -> str:
    """Where OpenDKIM must run: the SQLite database's directory (PostgreSQL: anywhere)."""
    if isinstance(database, SqliteDatabase):
        return str(database.path.parent)
    return "/"


POLICY_SCRIPT: Final = """\
-- OpenDKIM SetupPolicyScript (Postmeister): sign with the key of the header From's domain.
-- The KeyTable is keyed by domain (A-label, lowercase); a domain without a key is sent
-- unsigned (On-KeyNotFound accept). Only submissions reach this milter, after the sender
-- milter has checked that the login may use this From.
local domain = odkim.get_fromdomain(ctx)
if domain ~= nil then
  odkim.sign(ctx, string.lower(domain))
end
return nil
"""


def opendkim_conf(site: Site, signer: DkimSigner) -> str:
    view = DKIM_KEYS[signer.algorithm].name
    log = (
        # The private stack has no syslog: OpenDKIM has no log file of its own, so it is
        # quiet there; Postfix's log shows every milter answer.
        "Syslog no\n" if site.instance is not None else "Syslog yes\nSyslogSuccess no\nLogWhy yes\n"
    )
    return (
        HEADER
        + f"# Signs submitted mail with each domain's {signer.algorithm} key (see sign.lua).\n"
        + "Mode s\n"
        + f"Socket inet:{signer.endpoint.port}@{signer.endpoint.host}\n"
        + f"KeyTable {database_dsn(site.database, view)}\n"
        + f"SetupPolicyScript {site.config_dir / script_path()}\n"
        + f"SignatureAlgorithm {SIGNATURE_ALGORITHMS[signer.algorithm]}\n"
        + "Canonicalization relaxed/simple\n"
        + "# Sign From once more than it appears, so that no second From can be added.\n"
        + "OversignHeaders From\n"
        + "On-KeyNotFound accept\n"
        + "On-InternalError tempfail\n"
        + "SoftwareHeader no\n"
        + "UMask 007\n"
        + f"# Run from {working_directory(site.database)} (the SQLite DSN is relative to it).\n"
        + log
    )


def render_opendkim(site: Site) -> list[RenderedFile]:
    if not site.dkim_signers:
        return []
    # A PostgreSQL password is in the DSN: then the configuration is a secret file.
    secret = isinstance(site.database, PostgresDatabase) and bool(site.database.password)
    files = [
        RenderedFile(config_path(signer.algorithm), opendkim_conf(site, signer), secret=secret)
        for signer in site.dkim_signers
    ]
    files.append(RenderedFile(script_path(), HEADER.replace("#", "--") + POLICY_SCRIPT))
    return files
