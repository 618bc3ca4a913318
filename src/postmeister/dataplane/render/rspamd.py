"""rspamd configuration for a private instance (`dataplane up`): Debian's rules, no network.

rspamd is the spam scanner behind the Postmeister antispam milter: the milter sends each
message to an rspamd "normal" worker over rspamd's HTTP scan protocol and applies the
recipients' policies to rspamd's verdict (see `postmeister.dataplane.milter.antispam`).

The private instance uses the rule set of Debian's package (`/etc/rspamd`), its own state,
log and pid files below the stack directory, and a worker on a loopback port. It must work
without any outside network, so every module that asks DNS lists or other hosts is switched
off (through `local.d`, the place rspamd reads local overrides from) and rspamd's resolver
points at a closed loopback port: a lookup that slips through fails at once instead of
waiting for a timeout. An installation with network simply runs Debian's rspamd as it is;
the milter only needs the address of its normal worker.

ARC: rspamd seals mail that hosted forwards send on (`postmeister.dataplane.milter.arc`)
with the key the milter passes in each scan request, so `arc.conf` turns on
`use_http_headers` and nothing else: no key file, no signing without those headers. The
`arc` module needs rspamd's C `dkim` module, which Debian enables through `filters` in
`options.inc`; the private instance lists it itself, and keeps `dkim` verification on (it
asks DNS, which fails at once offline) because `arc` cannot load without it.
"""

from __future__ import annotations

from postmeister.dataplane.contract import CONTRACT_VERSION
from postmeister.dataplane.render.model import Instance, RenderedFile, Site

HEADER = (
    f"# Rendered by `postmeister dataplane render` (data-plane contract v{CONTRACT_VERSION}).\n"
    "# Do not edit: change the settings and render again.\n"
)

# Modules of Debian's rule set that query other hosts (DNS lists, DNS records, HTTP).
NETWORK_MODULES: tuple[str, ...] = (
    "asn",
    "dmarc",
    "emails",
    "fuzzy_check",
    "hfilter",
    "mx_check",
    "phishing",
    "rbl",
    "reputation",
    "rspamd_update",
    "spf",
    "url_redirector",
    "whitelist",
)

# Nothing listens here: DNS queries are refused at once.
DEAD_RESOLVER = "127.0.0.1:1"

# Seal only with the key of the request's headers (never a key file, never by default).
ARC_CONF = (
    "# ARC-seal with the key the Postmeister antispam milter sends per message\n"
    "# (PerformDkimSign, DkimDomain, DkimSelector, DkimPrivateKey); nothing else is sealed.\n"
    "use_http_headers = true;\n"
    "allow_headers_fallback = false;\n"
)
# Debian's `dkim_signing` would sign with key files below DBDIR; OpenDKIM signs instead.
DKIM_SIGNING_CONF = "# OpenDKIM signs submitted mail (opendkim/*.conf).\nenabled = false;\n"


def rspamd_conf(site: Site, instance: Instance) -> str:
    """The main configuration: Debian's rules (`common.conf`) plus this instance's own
    options, logging and one normal worker. Paths come from `--var` on the command line
    (`LOCAL_CONFDIR`, `DBDIR`, `RUNDIR`, `LOGDIR`), set by the stack."""
    return (
        HEADER
        + "# A private rspamd instance (postmeister dataplane up): loopback only, offline.\n"
        + '.include "$CONFDIR/common.conf"\n'
        + "options {\n"
        + f'  pidfile = "{instance.layout.rspamd_pid}";\n'
        + '  cache_file = "$DBDIR/symbols.cache";\n'
        + f'  hs_cache_dir = "{instance.rspamd_hyperscan_cache}/";\n'
        + '  url_tld = "${SHAREDIR}/effective_tld_names.dat";\n'
        + '  control_socket = "$DBDIR/rspamd.sock mode=0600";\n'
        + f'  tempdir = "{instance.layout.rspamd_state}";\n'
        + "  allow_raw_input = true;\n"
        + "  # The C modules: only dkim, which the arc module (sealing forwards) is built on.\n"
        + '  filters = "dkim";\n'
        + "  task_timeout = 8s;\n"
        + "  # Offline: nothing is a local network, and DNS fails at once.\n"
        + "  local_addrs = [];\n"
        + f'  dns {{ nameserver = ["{DEAD_RESOLVER}"]; timeout = 0.1s; retransmits = 1; }}\n'
        + "}\n"
        + "logging {\n"
        + '  type = "file";\n'
        + f'  filename = "{instance.layout.log_dir / "rspamd.log"}";\n'
        + '  level = "notice";\n'
        + "}\n"
        + 'worker "normal" {\n'
        + f'  bind_socket = "{site.rspamd}";\n'
        + "  count = 1;\n"
        + '  .include "$CONFDIR/worker-normal.inc"\n'
        + "}\n"
    )


def render_rspamd(site: Site) -> list[RenderedFile]:
    """The instance's rspamd files; an operator's site gets only the two overrides of ARC
    sealing and DKIM signing (`dataplane install` writes them to /etc/rspamd/local.d; the
    rest is Debian's rspamd as it is, its `dkim` module on by default)."""
    sealing = [
        RenderedFile("rspamd/local.d/arc.conf", HEADER + ARC_CONF),
        RenderedFile("rspamd/local.d/dkim_signing.conf", HEADER + DKIM_SIGNING_CONF),
    ]
    instance = site.instance
    if instance is None:
        return sealing
    files = [RenderedFile("rspamd/rspamd.conf", rspamd_conf(site, instance))]
    disabled = HEADER + "# Needs other hosts; the private instance is offline.\nenabled = false;\n"
    files.extend(
        RenderedFile(f"rspamd/local.d/{module}.conf", disabled) for module in NETWORK_MODULES
    )
    return files + sealing
