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
    "dkim",
    "dmarc",
    "arc",
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
    """The instance's rspamd files; an operator's site has none (Debian's rspamd as is)."""
    instance = site.instance
    if instance is None:
        return []
    files = [RenderedFile("rspamd/rspamd.conf", rspamd_conf(site, instance))]
    disabled = HEADER + "# Needs other hosts; the private instance is offline.\nenabled = false;\n"
    files.extend(
        RenderedFile(f"rspamd/local.d/{module}.conf", disabled) for module in NETWORK_MODULES
    )
    return files
