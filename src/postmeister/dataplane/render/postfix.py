"""Postfix configuration: SQL map files, a main.cf fragment, master.cf submission services.

Every map is declared as data (`PostfixMap`): the main.cf parameter it serves, the contract
view it reads, and the query. One function renders each map file per database. Postfix reads
every table through `proxy:` so that all smtpd processes share a few database connections,
and so that an SQLite error kills a proxymap process (Postfix treats SQLite errors as fatal)
and turns into a temporary 4xx answer instead of an smtpd crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from postmeister.dataplane.contract import (
    ALIAS_DOMAIN_LOOKUP,
    CATCHALL,
    CONTRACT_VERSION,
    DOMAINS,
    LOGINS,
    SENDER_LOGINS,
    SENDER_LOOKUP,
    SUBADDRESS_LOOKUP,
    View,
)
from postmeister.dataplane.contract import ALIASES as ALIASES_VIEW
from postmeister.dataplane.contract import MAILBOXES as MAILBOXES_VIEW
from postmeister.dataplane.render.model import (
    Instance,
    NodeRole,
    PostgresDatabase,
    Relay,
    RenderedFile,
    Site,
    SqliteDatabase,
)
from postmeister.dataplane.render.srs import HOSTED_SENDER_QUERY
from postmeister.dataplane.render.srs import main_cf_lines as srs_main_cf_lines

HEADER = (
    f"# Rendered by `postmeister dataplane render` (data-plane contract v{CONTRACT_VERSION}).\n"
    "# Do not edit: change the settings and render again.\n"
)

# AUTH commands per client address and minute on the submission port.
SUBMISSION_AUTH_RATE_LIMIT = 60
SUBMISSION_DISABLED_REPLY = "554 5.7.1 Sending is disabled for this account (submission_disabled)"

# TLS on the submission services (mandatory there): TLS 1.2 or newer. Ciphers stay at
# Postfix's default grade ("medium"; Debian's OpenSSL security level 2 removes short keys
# and SHA-1 signatures on top): the Postfix documentation advises against own cipher lists.
SUBMISSION_TLS_PROTOCOLS = ">=TLSv1.2"
# Port 25 is opportunistic (TLS_README, postconf(5) smtpd_tls_protocols): a failed
# handshake does not refuse the mail, the sending server retries in cleartext, so refusing
# an old sender's TLS 1.0/1.1 would only make its mail travel unencrypted. No password is
# sent there (no AUTH on port 25). Postfix's own default, stated so it is a visible choice.
MX_TLS_PROTOCOLS = ">=TLSv1"


@dataclass(frozen=True)
class PostfixMap:
    """One Postfix lookup table backed by a contract view.

    `query` uses Postfix's expansions: `%s` the whole key, `%u`/`%d` its local and domain
    parts. A query that uses `%u` is skipped for keys without a local part, so `'%u@%d'`
    never matches Postfix's `@domain` catch-all probe. `dialect_query` overrides `query`
    for a SQLAlchemy dialect name where SQLite and PostgreSQL spell a function differently.
    """

    stem: str
    parameter: str
    view: View
    query: str
    why: str
    dialect_query: Mapping[str, str] = field(default_factory=dict)

    def file_path(self) -> str:
        return f"postfix/{self.stem}.cf"

    def query_for(self, dialect: str) -> str:
        return self.dialect_query.get(dialect, self.query)


def _alias_query(dialect: str) -> str:
    """Where mail to `%u@%d` goes: its forward targets; or else the mailbox it reaches by
    subaddressing; or else, for an alias domain, the same address at the main domain; and
    a mailbox without targets answers with itself.

    That last row changes nothing for the mailbox (Postfix stops expanding an address that
    maps to itself) but is what makes an existing address beat the catch-all: Postfix asks
    the catch-all key `@domain` only when the whole address found nothing in any alias map.
    """
    address = "'%u@%d'"
    subaddress = SUBADDRESS_LOOKUP[dialect].format(local="'%u'", domain="'%d'", address=address)
    alias_domain = ALIAS_DOMAIN_LOOKUP.format(local="'%u'", domain="'%d'", address=address)
    # Only the contract's own statements are interpolated; Postfix quotes %u and %d itself.
    forwards = "SELECT target FROM dataplane_v1_aliases WHERE address = '%u@%d'"
    itself = (
        "SELECT s.address FROM dataplane_v1_mailboxes s WHERE s.address = '%u@%d'"
        " AND NOT EXISTS (SELECT 1 FROM dataplane_v1_aliases t WHERE t.address = '%u@%d')"
    )
    return f"{forwards} UNION ALL {subaddress} UNION ALL {alias_domain} UNION ALL {itself}"


MAPS: tuple[PostfixMap, ...] = (
    PostfixMap(
        stem="virtual-domains",
        parameter="virtual_mailbox_domains",
        view=DOMAINS,
        query="SELECT 'hosted' FROM dataplane_v1_domains WHERE domain = '%s'",
        why="accept mail for every hosted domain; unknown local parts then get 550 at RCPT",
    ),
    PostfixMap(
        stem="virtual-mailboxes",
        parameter="virtual_mailbox_maps",
        view=MAILBOXES_VIEW,
        query="SELECT 'mailbox' FROM dataplane_v1_mailboxes WHERE address = '%u@%d'",
        why="addresses delivered over LMTP to Dovecot",
    ),
    PostfixMap(
        stem="virtual-aliases",
        parameter="virtual_alias_maps",
        view=ALIASES_VIEW,
        query=_alias_query("sqlite"),
        dialect_query={"postgresql": _alias_query("postgresql")},
        why=(
            "forwards, mailboxes that keep a copy and forward (one row per recipient), "
            "local+anything of a mailbox with subaddress_extension, addresses of alias "
            "domains, and every mailbox itself (so that it beats the catch-all)"
        ),
    ),
    PostfixMap(
        stem="virtual-catchall",
        parameter="virtual_alias_maps",
        view=CATCHALL,
        # Only the `@domain` key: '%s' is the whole key, so a full address never matches.
        query="SELECT target FROM dataplane_v1_catchall WHERE domain = '%d' AND '%s' = '@%d'",
        why=(
            "catch-all: unknown local parts of a domain (and of its alias domains) go to its "
            "catch-all targets; asked by Postfix only after every full-address lookup failed"
        ),
    ),
    PostfixMap(
        stem="sender-logins",
        parameter="smtpd_sender_login_maps",
        view=SENDER_LOGINS,
        query=SENDER_LOOKUP.format(address="'%u@%d'", domain="'%d'"),
        why="which logins may use an envelope sender (own address + spoofing whitelist)",
    ),
    PostfixMap(
        stem="submission-access",
        parameter="postmeister_submission_access",
        view=LOGINS,
        query=(
            "SELECT '554 5.7.1 Sending is disabled for this account (submission_disabled)' "
            "FROM dataplane_v1_logins "
            "WHERE username = '%u@%d' AND submission_disabled = 1"
        ),
        why="check_sasl_access: refuse to relay for a login whose submission is disabled",
    ),
)


# Rendered only with SRS (`Site.srs`, render/srs.py): the first of the sender canonical maps.
SRS_HOSTED_SENDERS = PostfixMap(
    stem="srs-hosted-senders",
    parameter="sender_canonical_maps",
    view=DOMAINS,
    query=HOSTED_SENDER_QUERY,
    why=(
        "SRS: a sender in a hosted domain maps to itself, so postsrsd (the next map) "
        "is not asked and it is not rewritten"
    ),
)


def home_node_transport(node: NodeRole) -> PostfixMap:
    """Rendered only on one of several mail nodes (`Site.node`): mail for a mailbox homed
    on ANOTHER node goes to that node's Dovecot LMTP, by Postfix's own LMTP client. A
    mailbox homed here, or on no node, finds no row and keeps `virtual_transport` (this
    node's LMTP). A home node that does not answer leaves the mail queued here, retried."""
    # The node name is a DNS label (config validates it): nothing in it needs quoting.
    return PostfixMap(
        stem="transport-home-node",
        parameter="transport_maps",
        view=MAILBOXES_VIEW,
        query=(
            "SELECT 'lmtp:inet:[' || home_host || ']:' || CAST(home_lmtp_port AS TEXT)"  # noqa: S608
            " FROM dataplane_v1_mailboxes WHERE address = '%u@%d'"
            f" AND home_node IS NOT NULL AND home_node <> '{node.name}'"
        ),
        why="a mailbox homed on another mail node: delivered to that node over LMTP",
    )


def _site_maps(site: Site) -> list[PostfixMap]:
    """Every map of this site: `MAPS`, and the home-node transport on a named node."""
    return [*MAPS, *([home_node_transport(site.node)] if site.node is not None else [])]


def _table_type(site: Site) -> str:
    return "sqlite" if isinstance(site.database, SqliteDatabase) else "pgsql"


def _dialect(site: Site) -> str:
    return "sqlite" if isinstance(site.database, SqliteDatabase) else "postgresql"


def map_reference(site: Site, postfix_map: PostfixMap) -> str:
    return f"proxy:{_table_type(site)}:{site.config_dir / postfix_map.file_path()}"


def map_file(site: Site, postfix_map: PostfixMap) -> RenderedFile:
    lines = [HEADER, f"# {postfix_map.parameter}: {postfix_map.why}\n"]
    lines.append(f"# reads view {postfix_map.view.name}\n")
    database = site.database
    if isinstance(database, SqliteDatabase):
        lines.append(f"dbpath = {database.path}\n")
        secret = False
    else:
        lines.extend(_pgsql_connection(database))
        secret = True
    lines.append(f"query = {postfix_map.query_for(_dialect(site))}\n")
    return RenderedFile(path=postfix_map.file_path(), content="".join(lines), secret=secret)


def _pgsql_connection(database: PostgresDatabase) -> list[str]:
    # Postfix marks a failed host down for 60 s (not configurable for pgsql): after an
    # outage, lookups resume without any reload, but only after that minute, and a map
    # whose connection went stale during the outage may fail once more and wait another
    # one (the outage test measured about 100 s from recovery to SMTP accepting again).
    # Several hosts (a primary and its standbys): Postfix tries them in random order and
    # skips one that fails (pgsql_table(5)). It only reads, and the contract views answer
    # on a standby as on the primary, so it needs no target_session_attrs.
    hosts = " ".join(f"inet:{endpoint}" for endpoint in database.endpoints)
    lines = [
        f"hosts = {hosts}\n",
        f"dbname = {database.dbname}\n",
        f"user = {database.user}\n",
    ]
    if database.password:
        lines.append(f"password = {database.password}\n")
    return lines


# `postconf -d proxy_read_maps` of Postfix 3.7 (Debian 12). Postfix has no way to add to a
# list parameter, so the managed block repeats it; tests/dataplane/test_proxy_read_maps.py
# checks it against the installed Postfix, so an upgrade that adds a table is noticed.
POSTFIX_DEFAULT_PROXY_READ_MAPS = (
    "$local_recipient_maps $mydestination $virtual_alias_maps $virtual_alias_domains "
    "$virtual_mailbox_maps $virtual_mailbox_domains $relay_recipient_maps $relay_domains "
    "$canonical_maps $sender_canonical_maps $recipient_canonical_maps $relocated_maps "
    "$transport_maps $mynetworks $smtpd_sender_login_maps $sender_bcc_maps "
    "$recipient_bcc_maps $smtp_generic_maps $lmtp_generic_maps $alias_maps "
    "$smtpd_client_restrictions $smtpd_helo_restrictions $smtpd_sender_restrictions "
    "$smtpd_relay_restrictions $smtpd_recipient_restrictions "
    "$address_verify_sender_dependent_default_transport_maps "
    "$address_verify_sender_dependent_relayhost_maps $address_verify_transport_maps "
    "$fallback_transport_maps $lmtp_discard_lhlo_keyword_address_maps "
    "$lmtp_pix_workaround_maps $lmtp_sasl_password_maps $lmtp_tls_policy_maps "
    "$mailbox_command_maps $mailbox_transport_maps "
    "$postscreen_discard_ehlo_keyword_address_maps $rbl_reply_maps "
    "$sender_dependent_default_transport_maps $sender_dependent_relayhost_maps "
    "$smtp_discard_ehlo_keyword_address_maps $smtp_pix_workaround_maps "
    "$smtp_sasl_password_maps $smtp_tls_policy_maps "
    "$smtpd_discard_ehlo_keyword_address_maps $smtpd_milter_maps $virtual_gid_maps "
    "$virtual_uid_maps $local_login_sender_maps $postscreen_reject_footer_maps "
    "$smtpd_reject_footer_maps $tls_server_sni_maps $tlsproxy_client_policy_maps "
    "$default_delivery_status_filter $lmtp_delivery_status_filter $lmtp_dns_reply_filter "
    "$lmtp_reply_filter $local_delivery_status_filter $pipe_delivery_status_filter "
    "$postscreen_command_filter $smtp_delivery_status_filter $smtp_dns_reply_filter "
    "$smtp_reply_filter $smtpd_command_filter $smtpd_dns_reply_filter "
    "$virtual_delivery_status_filter $body_checks $header_checks $lmtp_body_checks "
    "$lmtp_header_checks $lmtp_mime_header_checks $lmtp_nested_header_checks "
    "$milter_header_checks $mime_header_checks $nested_header_checks $smtp_body_checks "
    "$smtp_header_checks $smtp_mime_header_checks $smtp_nested_header_checks"
)


def main_cf_fragment(site: Site) -> str:
    """The main.cf settings that wire Postfix to the contract (append, or `postconf -e`)."""
    # A parameter may have several maps (virtual_alias_maps: addresses, then the catch-all),
    # searched in this order.
    refs: dict[str, list[str]] = {}
    for m in _site_maps(site):
        refs.setdefault(m.parameter, []).append(map_reference(site, m))
    lines = [HEADER]
    lines.append("# Which domains and addresses exist, and where their mail goes.\n")
    for parameter, references in refs.items():
        lines.append(f"{parameter} = {', '.join(references)}\n")
    lines.append(f"virtual_transport = lmtp:inet:{site.lmtp}\n")
    # Postfix's own list stays whole (replacing it broke the operator's tables: Debian's
    # chrooted smtpd looks local recipients up through proxy:unix:passwd.byname and
    # refuses to start when proxymap does not serve it); Postmeister adds its access map.
    lines.append(
        f"proxy_read_maps = {POSTFIX_DEFAULT_PROXY_READ_MAPS} $postmeister_submission_access\n"
    )
    lines.append("# Unknown addresses of a hosted domain: 550 at RCPT time, never a bounce.\n")
    lines.append("smtpd_reject_unlisted_recipient = yes\n")
    lines.append("unknown_virtual_mailbox_reject_code = 550\n")
    lines.append("unknown_virtual_alias_reject_code = 550\n")
    lines.append(
        "# Subaddressing (local+anything) is each mailbox's own switch, answered by the\n"
        "# virtual_alias_maps query; a global delimiter (Debian's main.cf sets +) would\n"
        "# deliver it for every mailbox and let alice send as alice+x.\n"
        "recipient_delimiter =\n"
    )
    lines.append(
        "# Quota: Dovecot's quota-status service answers 552 at RCPT time for a full\n"
        "# mailbox (merge into your smtpd_recipient_restrictions after the relay checks).\n"
    )
    lines.append(f"smtpd_recipient_restrictions = check_policy_service inet:{site.quota_status}\n")
    lines.append(
        "# Antispam on the SMTP port: the Postmeister antispam milter asks rspamd and applies\n"
        "# each recipient's policy (add it to any smtpd_milters you already have).\n"
    )
    lines.append(f"postmeister_antispam_milter = inet:{site.antispam_milter}\n")
    lines.append("smtpd_milters = $postmeister_antispam_milter\n")
    lines.append("milter_protocol = 6\n")
    lines.append("# Milter unreachable: 4xx, the sender retries; nothing passes unscanned.\n")
    lines.append("milter_default_action = tempfail\n")
    lines.append("# SMTP AUTH through Dovecot (enabled only on the submission service).\n")
    lines.append("smtpd_sasl_type = dovecot\n")
    lines.append(f"smtpd_sasl_path = {site.postfix_sasl_path}\n")
    lines.append("smtpd_sasl_auth_enable = no\n")
    lines.append("smtpd_sasl_authenticated_header = no\n")
    lines.append(
        "# Submission: a disabled account is refused first, then the envelope sender must be\n"
        "# owned by the login; the milter then checks the header From the same way.\n"
    )
    lines.append(
        "postmeister_submission_sender_restrictions = check_sasl_access"
        " ${postmeister_submission_access}, reject_sender_login_mismatch,"
        " permit_sasl_authenticated, reject\n"
    )
    lines.append(f"postmeister_sender_milter = inet:{site.milter}\n")
    lines.append(
        "# DKIM: OpenDKIM signs what the submission services accept, after the sender\n"
        "# milter (one process per algorithm, see opendkim/*.conf); empty: no signing.\n"
    )
    signers = " ".join(f"inet:{signer.endpoint}" for signer in site.dkim_signers)
    lines.append(f"postmeister_dkim_milters = {signers}\n".replace(" \n", "\n"))
    lines.extend(relay_lines(site))
    if site.srs is not None:
        lines.extend(srs_main_cf_lines(site.srs, map_reference(site, SRS_HOSTED_SENDERS)))
    if site.tls is not None:
        lines.append(
            "# Read when an smtpd process starts: after a renewal, `postfix reload`\n"
            "# (postmeister dataplane reload) makes every new session use the new files.\n"
        )
        lines.append(f"smtpd_tls_cert_file = {site.tls.cert_file}\n")
        lines.append(f"smtpd_tls_key_file = {site.tls.key_file}\n")
        lines.append("# Port 25: STARTTLS offered, never required (not every server has it).\n")
        lines.append("smtpd_tls_security_level = may\n")
        lines.append(f"smtpd_tls_protocols = {MX_TLS_PROTOCOLS}\n")
    return "".join(lines)


def relay_password_map(site: Site) -> str:
    """Where the smarthost's SASL password map lives (texthash, 0600, written by the
    stack or the installer from `outbound_relay_password_file`; never rendered)."""
    return str(site.config_dir / "postfix" / "relay-password")


def relay_lines(site: Site) -> list[str]:
    """Outbound through a smarthost: TLS required, SASL when a username is set. Without a
    relay nothing is set here: Postfix delivers to each recipient domain's MX."""
    relay = site.relay
    if relay is None:
        return []
    lines = [
        "# Outbound: every message goes through this smarthost, over TLS only.\n",
        f"relayhost = {relay.host}\n",
        "smtp_tls_security_level = encrypt\n",
        f"smtp_tls_protocols = {SUBMISSION_TLS_PROTOCOLS}\n",
        f"smtp_tls_mandatory_protocols = {SUBMISSION_TLS_PROTOCOLS}\n",
    ]
    if relay.username is not None:
        lines += [
            "# The password is in a 0600 map, read by Postfix before it drops privileges.\n",
            "smtp_sasl_auth_enable = yes\n",
            f"smtp_sasl_password_maps = texthash:{relay_password_map(site)}\n",
            "smtp_sasl_security_options = noanonymous\n",
            "smtp_sasl_tls_security_options = noanonymous\n",
        ]
    return lines


def relay_password_entry(relay: Relay, password: str) -> str:
    """The one line of the password map: `relayhost username:password`."""
    assert relay.username is not None
    return f"{relay.host} {relay.username}:{password}\n"


def submission_service(name: str, *, chroot: str, implicit_tls: bool = False) -> str:
    """The master.cf entry of a submission service: STARTTLS required (port 587 on a real
    installation), or with `implicit_tls` TLS from the first byte ("submissions", 465).

    Both have the same restrictions, SASL, rate limit and milters; only the way TLS starts
    differs. AUTH is offered only inside TLS (`smtpd_tls_auth_only`).
    """
    tls = (
        ["syslog_name=postfix/submissions", "smtpd_tls_wrappermode=yes"]
        if implicit_tls
        else ["syslog_name=postfix/submission"]
    )
    options = [
        *tls,
        "smtpd_tls_security_level=encrypt",
        f"smtpd_tls_protocols={SUBMISSION_TLS_PROTOCOLS}",
        f"smtpd_tls_mandatory_protocols={SUBMISSION_TLS_PROTOCOLS}",
        "smtpd_tls_auth_only=yes",
        "smtpd_sasl_auth_enable=yes",
        # Brute force, per client address: at most this many AUTH commands a minute
        # (anvil_rate_time_unit); Dovecot then slows and blocks failures per address and
        # per account. smtpd_client_event_limit_exceptions ($mynetworks) are exempt.
        f"smtpd_client_auth_rate_limit={SUBMISSION_AUTH_RATE_LIMIT}",
        "smtpd_client_restrictions=permit_sasl_authenticated,reject",
        "smtpd_helo_restrictions=",
        "smtpd_sender_restrictions=$postmeister_submission_sender_restrictions",
        "smtpd_relay_restrictions=permit_sasl_authenticated,reject",
        "smtpd_recipient_restrictions=permit_sasl_authenticated,reject",
        "smtpd_milters=$postmeister_sender_milter,$postmeister_dkim_milters",
        # Without the milters nobody checks the header From or signs: clients retry.
        "milter_default_action=tempfail",
        "milter_macro_daemon_name=ORIGINATING",
    ]
    line = f"{name} inet n - {chroot} - - smtpd\n"
    return line + "".join(f"  -o {o}\n" for o in options)


def master_cf_fragment(site: Site) -> str:
    del site  # the same entries for every site; kept a function of the site like the others
    return (
        HEADER
        + "# Replace the stock (commented-out) `submission` and `submissions` entries.\n"
        + submission_service("submission", chroot="y")
        + submission_service("submissions", chroot="y", implicit_tls=True)
    )


# --- a private instance (dataplane up) -------------------------------------------------------

_STOCK_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def instance_main_cf(site: Site, instance: Instance) -> str:
    head = [
        HEADER,
        "# A private Postfix instance (postmeister dataplane up): loopback only, its own queue.\n",
        "compatibility_level = 3.6\n",
        f"queue_directory = {instance.layout.postfix_queue}\n",
        f"data_directory = {instance.layout.postfix_data}\n",
        "mail_owner = postfix\n",
        "setgid_group = postdrop\n",
        f"myhostname = {site.hostname}\n",
        "myorigin = $myhostname\n",
        "mydestination =\n",
        "mynetworks =\n",
        # With SRS the fragment below names the SRS domain instead.
        *([] if site.srs is not None else ["relay_domains =\n"]),
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n",
        f"inet_interfaces = {instance.listen}\n",
        "inet_protocols = ipv4\n",
        "alias_maps =\n",
        "alias_database =\n",
        "local_recipient_maps =\n",
        "local_transport = error:5.1.1 this private instance has no local users\n",
        *(
            []
            if site.relay is not None
            else [
                "default_transport = error:5.7.1 this private instance sends no mail off"
                " the machine\n"
            ]
        ),
        "# No network here: no DNS for clients or next hops (a lookup would only time out).\n",
        "smtpd_peername_lookup = no\n",
        "smtp_dns_support_level = disabled\n",
        "lmtp_host_lookup = native\n",
        "smtp_host_lookup = native\n",
        "biff = no\n",
        "append_dot_mydomain = no\n",
        f"maillog_file = {instance.layout.log_dir / 'postfix.log'}\n",
        f"maillog_file_prefixes = {instance.layout.log_dir}\n",
        *([] if site.relay is not None else ["smtp_tls_security_level = none\n"]),
        *_limit_exceptions(site),
        "\n",
    ]
    return "".join(head) + main_cf_fragment(site)


def _limit_exceptions(site: Site) -> list[str]:
    # mynetworks is empty here, so without this the hosts that log in on behalf of others
    # (the auth policy's trusted networks) would share one AUTH rate limit.
    policy = site.auth_policy
    if policy is None or not policy.trusted_networks:
        return []
    return [f"smtpd_client_event_limit_exceptions = {' '.join(policy.trusted_networks)}\n"]


def instance_master_cf(site: Site, instance: Instance) -> str:
    del site
    listen = instance.listen
    submissions = (
        submission_service(f"{listen}:{instance.submissions_port}", chroot="n", implicit_tls=True)
        if instance.submissions_port is not None
        else ""
    )
    return (
        HEADER
        + "# service type  private unpriv  chroot  wakeup  maxproc command + args\n"
        + f"{listen}:{instance.smtp_port} inet n - n - - smtpd\n"
        + submission_service(f"{listen}:{instance.submission_port}", chroot="n")
        + submissions
        + _STOCK_SERVICES
    )


def render_postfix(site: Site) -> list[RenderedFile]:
    files = [map_file(site, m) for m in _site_maps(site)]
    if site.srs is not None:
        files.append(map_file(site, SRS_HOSTED_SENDERS))
    files.append(RenderedFile("postfix/main.cf.postmeister", main_cf_fragment(site)))
    files.append(RenderedFile("postfix/master.cf.postmeister", master_cf_fragment(site)))
    if site.instance is not None:
        files.append(RenderedFile("postfix/main.cf", instance_main_cf(site, site.instance)))
        files.append(RenderedFile("postfix/master.cf", instance_master_cf(site, site.instance)))
    return files
