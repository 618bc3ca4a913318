"""Settings: one small model per concern, read from `POSTMEISTER_*` environment variables.

Nested settings use a double underscore: `POSTMEISTER_PASSWORDS__MIN_LENGTH=20`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8443
    # Set only when a TLS-terminating proxy sits in front: then serve speaks plain HTTP and
    # still refuses any request that the proxy did not receive over HTTPS.
    behind_tls_proxy: bool = False
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    max_body_bytes: int = 1_048_576
    # Worker processes of `postmeister serve`; None: one per core this process may run on.
    # Every worker ticks the scheduler; a job still runs once per due time (its lock and
    # `job_state` row, `postmeister.scheduler.runner`).
    workers: int | None = Field(default=None, ge=1, le=256)


class PasswordSettings(BaseModel):
    min_length: int = 16
    max_length: int = 1024
    min_distinct: int = 10
    banned_words: list[str] = Field(
        default_factory=lambda: [
            "postmeister",
            "variomedia",
            "vrmd",
            "securehost",
            "password",
            "passwort",
            "lieber laenger, als kuerzer",
        ]
    )
    # Extra files of leaked-password SHA-1 hashes (sorted, "HASH[:COUNT]" per line).
    leaked_hash_files: list[Path] = Field(default_factory=list)
    # argon2id parameters; the defaults are OWASP's minimum (19 MiB, 2 iterations, 1 lane).
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1


class AddressSettings(BaseModel):
    """Limits on what a customer may set on its own addresses.

    `POSTMEISTER_ADDRESSES__MAX_QUOTA_BYTES` (default 10 GiB): the largest mailbox quota a
    customer may set, and the quota of a mailbox a customer creates without one (through
    either API dialect or its sync document). Only an admin may set a larger quota or none
    (unlimited). Until packages carry quota limits this is the one bound.
    """

    max_quota_bytes: int = Field(default=10 * 2**30, ge=0, le=2**50)


class SendingLimitSettings(BaseModel):
    """What happens when a mailbox reaches one of its sending limits (the limits themselves
    are a package's, README "Sending limits").

    `POSTMEISTER_SENDING_LIMITS__DISABLE_SUBMISSION=true` also switches submission off for a
    mailbox that reached one of its own limits, so that a compromised account stops at once
    (its owner or an admin switches it on again); by default only the one message waits.
    """

    disable_submission: bool = False


class SchedulerSettings(BaseModel):
    enabled: bool = True
    timezone: str = "Europe/Berlin"
    tick_seconds: float = 30.0


class SyncSettings(BaseModel):
    """Basic JSON sync: how documents are fetched and when a document is held back.

    A source's poll interval (`interval_seconds`) must lie between `min_interval_seconds`
    (default 60 s) and `max_interval_seconds` (default 604800 s, 7 days), on every write
    path (both APIs, the CLI); polling also clamps a stored interval into that range, so a
    row written before the bound existed cannot overflow the shared polling job.
    """

    timeout_seconds: float = 30.0
    max_document_bytes: int = 64 * 1024 * 1024
    # Extra CA certificates (PEM) trusted for sync sources, e.g. a company CA.
    ca_bundle: Path | None = None
    # Customer-supplied URLs may not point into the controller's own networks (loopback,
    # private ranges, link-local) unless the operator allows it. The CLI is the operator
    # and is not restricted.
    allow_private_networks: bool = False
    default_interval_seconds: int = 300
    min_interval_seconds: int = Field(default=60, ge=1)
    max_interval_seconds: int = Field(default=7 * 24 * 3600, ge=1, le=365 * 24 * 3600)
    # A document that would delete more than this share of a source's addresses waits
    # for an operator's confirmation.
    max_delete_share: float = Field(default=0.25, ge=0.0, le=1.0)


class WebhookSettings(BaseModel):
    """Webhook deliveries (`postmeister.domain.webhooks`): how often the dispatcher looks for
    due deliveries, how long one attempt may take, and the retry schedule.

    A failed attempt n (1-based) is retried after `min(backoff_seconds * 2**(n-1),
    max_backoff_seconds)`: by default 15 s, 30 s, 1 min, 2 min, ... up to 6 h apart. After
    `max_attempts` failed attempts (default 12, about 8.5 hours) the delivery is `failed`
    and its endpoint is disabled until someone enables it again.
    """

    # Run the dispatcher in `postmeister serve` (only where the scheduler runs too: a
    # controller with `POSTMEISTER_SCHEDULER__ENABLED=false` does no background work).
    enabled: bool = True
    poll_seconds: float = Field(default=2.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0)
    backoff_seconds: float = Field(default=15.0, ge=0)
    max_backoff_seconds: float = Field(default=6 * 3600.0, ge=0)
    max_attempts: int = Field(default=12, ge=1)
    # A claimed delivery is due again after this long (its controller died while sending).
    lease_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=50, ge=1)
    # Extra CA certificates (PEM) trusted for endpoints (default: the system's store).
    ca_bundle: Path | None = None
    # Endpoint URLs may not lead into the controller's own networks unless this is set.
    allow_private_networks: bool = False


# A Postfix relayhost: `[host]:port` (no MX lookup) or `host:port` (its MX).
_RELAY = r"\[[A-Za-z0-9.:-]+\](:[0-9]{1,5})?|[A-Za-z0-9.-]+(:[0-9]{1,5})?"


class DataplaneSettings(BaseModel):
    """The Postfix/Dovecot side: names, paths and addresses of the mail data plane."""

    # Postfix myhostname and the HELO/banner name; Dovecot's postmaster address domain.
    hostname: str = "mail.example.org"
    # Where Dovecot keeps mailboxes (`<mail_root>/<domain>/<local part>/Maildir`).
    mail_root: Path = Path("/var/vmail")
    # The system user (and group of the same name) that owns the mail files.
    mail_user: str = "vmail"
    # The group that may read and write an SQLite database and its -wal/-shm files. It must be
    # the primary group of Postfix's mail_owner: Postfix drops supplementary groups.
    sqlite_group: str = "postfix"
    # Dovecot LMTP, where Postfix delivers (`host:port`).
    lmtp_address: str = "127.0.0.1:24"
    # The Postmeister sender milter (header From check on submission), `host:port`.
    milter_address: str = "127.0.0.1:10029"
    # Dovecot's quota-status policy service, asked by Postfix at RCPT time.
    quota_status_address: str = "127.0.0.1:10030"
    # The Postmeister antispam milter (applies each address's `antispam` policy).
    antispam_milter_address: str = "127.0.0.1:10031"
    # rspamd's normal worker, which the antispam milter asks for a verdict.
    rspamd_address: str = "127.0.0.1:11333"
    # Where the milters serve their Prometheus metrics (`/metrics`) and a contract check
    # (`/status`), over plain HTTP: keep it on loopback or a monitoring network.
    milter_metrics_address: str = "127.0.0.1:10033"
    # The Postmeister auth policy service (brute-force limits), asked by Dovecot on every login.
    auth_policy_address: str = "127.0.0.1:10032"
    # Hosts that log in for others and pass on the client's address (a webmail host): exempt
    # from the per-address brute-force limits (the per-account limits still hold). CIDR list.
    trusted_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    # The Dovecot auth socket Postfix uses for SMTP AUTH (Postfix may see it relative to its
    # queue directory; Dovecot needs the absolute path).
    sasl_socket: Path = Path("/var/spool/postfix/private/postmeister-auth")
    postfix_sasl_path: str = "private/postmeister-auth"
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # The webmail (`dataplane install --with-webmail`): nginx's HTTPS listener (`host:port`,
    # IPv4) and the name Roundcube shows.
    webmail_address: str = "0.0.0.0:443"
    webmail_product_name: str = "Webmail"
    # OpenDKIM, the signing milter on the submission services (after the sender milter).
    # `dkim_ed25519_milter_address` is a second OpenDKIM instance, started only when
    # `dkim.algorithms` includes ed25519: OpenDKIM signs with one algorithm per process.
    dkim_milter_address: str = "127.0.0.1:8891"
    dkim_ed25519_milter_address: str = "127.0.0.1:8892"
    # Outbound delivery. None: straight to each recipient domain's MX (Postfix's smtp
    # transport). Or a smarthost `[host]:port` that all outbound mail is relayed through,
    # with TLS required (`smtp_tls_security_level = encrypt`) and, when a username is set,
    # SMTP AUTH with the password read from `outbound_relay_password_file` (never main.cf).
    outbound_relay: str | None = None
    outbound_relay_username: str | None = None
    outbound_relay_password_file: Path | None = None
    # Several mail nodes (issue 17): this node's name in the node registry (`mail_nodes`);
    # empty: a single node, where every mailbox is served here. With a name, mail for a
    # mailbox homed on another node is delivered there over LMTP and its IMAP/POP3 logins
    # are proxied there; `node_address` is where this node's LMTP listens for the other
    # nodes (its address on the node network, the one registered for it), and
    # `node_networks` the other nodes' network, whose proxied logins Dovecot trusts.
    node_name: str = Field(default="", pattern=r"^$|^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
    node_address: str = ""
    node_networks: list[IPvAnyNetwork] = Field(default_factory=list)

    @model_validator(mode="after")
    def _node_complete(self) -> DataplaneSettings:
        if self.node_name and (not self.node_address or not self.node_networks):
            raise ValueError("a named mail node needs node_address and node_networks")
        return self

    @field_validator("outbound_relay")
    @classmethod
    def _relay_form(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(_RELAY, value):
            raise ValueError("a smarthost is `[host]:port` (or `host:port` to look up its MX)")
        return value


DkimAlgorithm = Literal["rsa", "ed25519"]


class DkimSettings(BaseModel):
    """DKIM keys (`postmeister.domain.dkim`): generated for every domain when it is added.

    `algorithms`: the keys each domain gets and the signatures each message carries (RSA,
    and Ed25519 as a second signature where configured; RFC 8463 verifiers are still rare,
    so RSA stays). A rotation makes a new key sign at once; the old one stays published for
    `overlap_days` so that mail signed just before still verifies, then the daily job removes
    it. Selectors are `<selector_prefix><year><letter>` (`-ed` appended for Ed25519).
    """

    algorithms: list[DkimAlgorithm] = Field(default_factory=lambda: list[DkimAlgorithm](["rsa"]))
    rsa_bits: int = Field(default=2048, ge=1024, le=4096)
    overlap_days: int = Field(default=7, ge=0, le=366)
    selector_prefix: str = Field(default="pm", pattern=r"^[a-z][a-z0-9]{0,20}$")

    @field_validator("algorithms")
    @classmethod
    def _some(cls, value: list[DkimAlgorithm]) -> list[DkimAlgorithm]:
        if not value:
            raise ValueError("at least one algorithm")
        return list(dict.fromkeys(value))


class SrsSettings(BaseModel):
    """SRS for mail forwarded off the machine (`postmeister.dataplane.render.srs`, Debian's
    postsrsd): an envelope sender outside the hosted domains becomes
    `SRS0=...@<domain>`, and a bounce to such an address goes back to the original sender.

    On by default: without it every forward to another provider fails SPF at the receiver,
    and mail from senders who publish DMARC p=reject is refused there; a forward is an
    everyday feature, not an option. `enabled=false` leaves envelope senders as they are.

    `domain` (default `dataplane.hostname`) must resolve to this server (MX or A), publish an
    SPF record that allows it, and must not be one of Postfix's `mydestination`.
    `secret_file` (default `<data_dir>/srs-secret`, created once with mode 0600) signs the
    addresses: every mail node needs the same file, so copy it to each node before its first
    `dataplane install` (or point this at a file your configuration management deploys). A
    second line in it is a former secret that still verifies (a rotation).
    """

    enabled: bool = True
    domain: str | None = None
    # postsrsd 1.x serves both tables on one address; Debian's own postsrsd.service takes
    # 10001/10002, so ours has its own ports and both may run.
    listen_host: str = "127.0.0.1"
    forward_port: int = Field(default=10034, ge=1, le=65535)
    reverse_port: int = Field(default=10035, ge=1, le=65535)
    secret_file: Path | None = None

    @model_validator(mode="after")
    def _two_ports(self) -> SrsSettings:
        if self.forward_port == self.reverse_port:
            raise ValueError("forward_port and reverse_port must differ")
        return self


class ClientSettings(BaseModel):
    """What mail clients are told to connect to: the one source of the client-facing host
    names and ports.

    The client autoconfiguration documents (Thunderbird's autoconfig, Outlook's
    autodiscover, the Apple `.mobileconfig`; `postmeister.domain.clientconfig`) and the
    RFC 6186 SRV records in the README all name these values and nothing else, so they
    cannot disagree with one another. The production data plane's listeners are to be
    rendered from the same settings (the coming `postmeister dataplane install`, issue 13
    item 2), so what a client is told is what the server listens on; until then an operator
    who moves a listener changes it here too. The defaults are the standard ports of issue 13
    item 2. A port set to null is not offered: the documents leave that service out (e.g.
    `POSTMEISTER_CLIENT__POP3_STARTTLS_PORT=null` while POP3 is not installed).

    `POSTMEISTER_CLIENT__HOST`: the host name clients connect to for IMAP, POP3 and
    submission; the name on the TLS certificate. Default: `dataplane.hostname`.
    """

    host: str | None = None
    # IMAP with implicit TLS (imaps, RFC 8314).
    imap_tls_port: int | None = Field(default=993, ge=1, le=65535)
    # IMAP on the plain port, STARTTLS required before login.
    imap_starttls_port: int | None = Field(default=143, ge=1, le=65535)
    # POP3 with implicit TLS (pop3s).
    pop3_tls_port: int | None = Field(default=995, ge=1, le=65535)
    # POP3 on the plain port, STARTTLS (STLS) required before login.
    pop3_starttls_port: int | None = Field(default=110, ge=1, le=65535)
    # Message submission with implicit TLS ("submissions", RFC 8314).
    submission_tls_port: int | None = Field(default=465, ge=1, le=65535)
    # Message submission with STARTTLS required (RFC 6409).
    submission_starttls_port: int | None = Field(default=587, ge=1, le=65535)
    # The provider's name as clients show it (Thunderbird's displayName, the profile's
    # organisation). Default: the mail domain itself.
    display_name: str | None = None

    @field_validator(
        "imap_tls_port",
        "imap_starttls_port",
        "pop3_tls_port",
        "pop3_starttls_port",
        "submission_tls_port",
        "submission_starttls_port",
        mode="before",
    )
    @classmethod
    def _not_offered(cls, value: object) -> object:
        # An environment variable is a string: "null" (or empty) means "not offered".
        if isinstance(value, str) and value.strip().lower() in ("", "null", "none"):
            return None
        return value

    @model_validator(mode="after")
    def _offers_reading_and_sending(self) -> ClientSettings:
        # Every document needs an IMAP server to read and a submission server to send with.
        if self.imap_tls_port is None and self.imap_starttls_port is None:
            raise ValueError("at least one IMAP port (imap_tls_port, imap_starttls_port)")
        if self.submission_tls_port is None and self.submission_starttls_port is None:
            raise ValueError("at least one submission port (submission_tls_port, ...)")
        return self


class AuditSettings(BaseModel):
    """The audit trail (`GET /audit-events`, `postmeister audit`): events older than
    `retention_days` (default 400: a year and a bit, for a yearly review) are removed by the
    daily `audit-retention` job."""

    retention_days: int = Field(default=400, ge=1, le=100 * 366)


# A list an environment variable gives as JSON or comma-separated (`DnsSettings`
# decodes it itself).
Addresses = Annotated[list[str], NoDecode]


class DnsSettings(BaseModel):
    """The DNS records every hosted domain needs (`GET /domains/{id}/dns`, `postmeister
    domain dns`; `postmeister.domain.dns`) and the resolver that checks them live.

    `resolvers`: addresses with an optional port (`192.0.2.53`, `127.0.0.1:5353`,
    `[2001:db8::53]:53`), as a JSON list or comma-separated; empty (the default): the
    system's resolvers from /etc/resolv.conf. Each check waits at most `timeout_seconds`.
    `web_host` is the name `autoconfig.<domain>`, `autodiscover.<domain>` and
    `mta-sts.<domain>` point at (a CNAME): the controller's public host name, default the
    client host (`client.host`, else `dataplane.hostname`).
    """

    resolvers: Addresses = Field(default_factory=list)
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # The TTL of the records we tell customers to publish.
    ttl: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    mx_preference: int = Field(default=10, ge=0, le=65535)
    web_host: str | None = None
    # SPF: the data plane's host is always authorised (`a:<dataplane.hostname>`); these
    # mechanisms too (e.g. `include:relay.example.net` for an outbound relay), then the
    # policy for every other sender.
    spf_mechanisms: Addresses = Field(default_factory=list)
    spf_policy: Literal["~all", "-all"] = "~all"
    # DMARC: the policy (p=) and where aggregate reports go (`mailto:` URIs; empty: none).
    dmarc_policy: Literal["none", "quarantine", "reject"] = "none"
    dmarc_rua: Addresses = Field(default_factory=list)
    # MTA-STS (RFC 8461): the `_mta-sts` TXT record with the policy's id and the
    # `mta-sts.<domain>` host that serves the policy file.
    mta_sts_enabled: bool = False
    mta_sts_id: str = Field(default="1", pattern=r"^[A-Za-z0-9]{1,32}$")
    # TLS-RPT (RFC 8460): where TLS failure reports go (`mailto:` or `https:` URIs).
    tls_rpt_enabled: bool = False
    tls_rpt_rua: Addresses = Field(default_factory=list)

    @field_validator("resolvers", "spf_mechanisms", "dmarc_rua", "tls_rpt_rua", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # An environment variable may be a JSON list or "a, b".
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("resolvers")
    @classmethod
    def _resolver_addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            resolver_address(item)  # raises ValueError with the reason
        return value

    @model_validator(mode="after")
    def _reports_need_an_address(self) -> DnsSettings:
        if self.tls_rpt_enabled and not self.tls_rpt_rua:
            raise ValueError("tls_rpt_enabled needs at least one tls_rpt_rua address")
        return self


def resolver_address(text: str) -> tuple[str, int]:
    """`host`, `host:port` or `[v6]:port` as (IP address, port); ValueError if malformed."""
    text = text.strip()
    port = 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"resolver {text!r}: expected [address]:port")
            port = _port(text, rest[1:])
    elif text.count(":") == 1:
        host, _, rest = text.partition(":")
        port = _port(text, rest)
    else:
        host = text
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"resolver {text!r}: not an IP address") from None
    return host, port


def _port(text: str, port: str) -> int:
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"resolver {text!r}: the port must be 1-65535")
    return int(port)


class LoggingSettings(BaseModel):
    """The controller's and the CLI's log: one JSON object per line (`json`, for a log
    collector) or one readable line (`human`, for a terminal); to stderr unless `file` is
    set. Request lines carry the request id and the actor's token id, never a secret."""

    format: Literal["json", "human"] = "json"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Append to this file instead of writing to stderr (e.g. for a log shipper).
    file: Path | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="POSTMEISTER_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("./var")
    database_url: str | None = None
    http: HttpSettings = Field(default_factory=HttpSettings)
    passwords: PasswordSettings = Field(default_factory=PasswordSettings)
    addresses: AddressSettings = Field(default_factory=AddressSettings)
    sending_limits: SendingLimitSettings = Field(default_factory=SendingLimitSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    dkim: DkimSettings = Field(default_factory=DkimSettings)
    srs: SrsSettings = Field(default_factory=SrsSettings)
    dataplane: DataplaneSettings = Field(default_factory=DataplaneSettings)
    client: ClientSettings = Field(default_factory=ClientSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    dns: DnsSettings = Field(default_factory=DnsSettings)

    @property
    def client_host(self) -> str:
        """The host name mail clients connect to (`client.host`, else `dataplane.hostname`)."""
        return self.client.host or self.dataplane.hostname

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'postmeister.sqlite3').resolve()}"
