"""The webmail: Debian's Roundcube behind Debian's nginx and PHP-FPM, configured against the
data plane. Pure: a `Webmail` in, the files out (`stack.py`, `install.py` and the tests write
them).

What the configuration does, and why:

- Roundcube logs in to Dovecot over implicit TLS (or STARTTLS) with what the user typed, so
  the mailbox password and every application password work exactly as in a mail program,
  and sends through submission as that same user (`smtp_user`/`smtp_pass` = `%u`/`%p`), so
  the sender milter's spoofing rules apply to webmail too. Both connections verify the data
  plane's certificate (the system's CAs, or `ca_file`) for `tls_peer_name`.
- One identity per user, its address fixed to the login (`identities_level` 3): the From a
  user picks is the one the milter checks, and it cannot be edited into somebody else's.
- No managesieve plugin: the autoresponder and antispam Sieve scripts stay Postmeister's.
- The plugin `postmeister_client_ip` sends the browser's address as IMAP `ID
  x-originating-ip` before LOGIN. Dovecot believes it only from `login_trusted_networks`
  (the webmail host is one, `dataplane.trusted_networks`), so the brute-force limits of the
  auth policy count the browser's address, not the webmail host's.
- Roundcube reads its configuration from `config_dir` (the `ROUNDCUBE_CONFIG_DIR` variable
  the PHP-FPM pool sets), not Debian's /etc/roundcube, which stays as the package left it;
  `defaults.inc.php` there includes Debian's defaults.
- nginx serves `install_path/public_html` with HTTPS only (TLS 1.2 and 1.3) from the same
  certificate and key files as the mail ports, and PHP through the pool's unix socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from postmeister.dataplane.render.model import Endpoint, RenderedFile, Tls

CONFIG_FILE = "webmail/config.inc.php"
DEFAULTS_FILE = "webmail/defaults.inc.php"
PLUGIN = "postmeister_client_ip"
PLUGIN_FILE = f"webmail/plugins/{PLUGIN}/{PLUGIN}.php"
NGINX_FILE = "webmail/nginx.conf"
FPM_POOL_FILE = "webmail/php-fpm.conf"

# Debian's Roundcube: the tree whose public_html nginx serves, and its default settings.
DEBIAN_INSTALL_PATH = Path("/var/lib/roundcube")
DEBIAN_DEFAULTS = Path("/etc/roundcube/defaults.inc.php")
HEADER = "Rendered by Postmeister (`postmeister dataplane install --with-webmail`)"


@dataclass(frozen=True)
class Webmail:
    """One webmail installation, as the renderer sees it: every path is where it will be."""

    server_name: str
    listen: Endpoint
    tls: Tls
    # Dovecot's IMAP and Postfix's submission; `*_implicit_tls`: TLS from the first byte
    # (993, 465), else STARTTLS (143, 587).
    imap: Endpoint
    submission: Endpoint
    imap_implicit_tls: bool
    submission_implicit_tls: bool
    # The name on the data plane's certificate, verified against `ca_file` (None: the
    # system's CAs).
    tls_peer_name: str
    des_key: str
    database: Path
    config_dir: Path
    fpm_socket: Path
    log_dir: Path
    temp_dir: Path
    install_path: Path = DEBIAN_INSTALL_PATH
    defaults_file: Path = DEBIAN_DEFAULTS
    ca_file: Path | None = None
    product_name: str = "Webmail"
    # The user PHP runs as (and nginx's workers connect to the socket as).
    user: str = "www-data"


def render_webmail(webmail: Webmail) -> list[RenderedFile]:
    """Roundcube's configuration and plugin, the nginx server block, the PHP-FPM pool."""
    return [
        RenderedFile(CONFIG_FILE, roundcube_config(webmail), secret=True, group=webmail.user),
        RenderedFile(DEFAULTS_FILE, _defaults(webmail)),
        RenderedFile(PLUGIN_FILE, PLUGIN_SOURCE),
        RenderedFile(NGINX_FILE, nginx_server(webmail)),
        RenderedFile(FPM_POOL_FILE, fpm_pool(webmail)),
    ]


def _php(value: str | Path) -> str:
    """A PHP single-quoted string literal."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _tls_options(webmail: Webmail) -> str:
    options = [
        "'verify_peer' => true",
        "'verify_peer_name' => true",
        f"'peer_name' => {_php(webmail.tls_peer_name)}",
    ]
    if webmail.ca_file is not None:
        options.append(f"'cafile' => {_php(webmail.ca_file)}")
    return "['ssl' => [" + ", ".join(options) + "]]"


def roundcube_config(webmail: Webmail) -> str:
    imap = ("ssl://" if webmail.imap_implicit_tls else "tls://") + str(webmail.imap)
    smtp = ("ssl://" if webmail.submission_implicit_tls else "tls://") + str(webmail.submission)
    tls = _tls_options(webmail)
    settings = [
        ("db_dsnw", _php(f"sqlite:///{webmail.database}?mode=0640")),
        ("imap_host", _php(imap)),
        ("imap_conn_options", tls),
        ("smtp_host", _php(smtp)),
        # Authenticate on submission as the logged-in user: the spoofing rules apply.
        ("smtp_user", "'%u'"),
        ("smtp_pass", "'%p'"),
        ("smtp_conn_options", tls),
        # The login is the full address; one identity, whose address cannot be edited.
        ("login_username_filter", "'email'"),
        ("identities_level", "3"),
        # No managesieve: the autoresponder and antispam Sieve scripts stay Postmeister's.
        ("plugins", f"[{_php(PLUGIN)}]"),
        ("des_key", _php(webmail.des_key)),
        ("product_name", _php(webmail.product_name)),
        ("display_product_info", "1"),
        ("skin", "'elastic'"),
        ("use_https", "true"),
        ("ip_check", "true"),
        ("login_autocomplete", "0"),
        ("enable_installer", "false"),
        ("enable_spellcheck", "false"),
        ("create_default_folders", "true"),
        ("support_url", "''"),
        ("log_driver", "'file'"),
        ("log_dir", _php(webmail.log_dir)),
        ("temp_dir", _php(webmail.temp_dir)),
    ]
    lines = [
        "<?php",
        f"// {HEADER}: Roundcube against the Postmeister data plane; edits are lost.",
        "$config = [];",
        *(f"$config['{key}'] = {value};" for key, value in settings),
    ]
    return "\n".join(lines) + "\n"


def _defaults(webmail: Webmail) -> str:
    # Roundcube reads defaults.inc.php from its configuration directory only.
    return f"<?php\n// {HEADER}: Debian's defaults.\ninclude {_php(webmail.defaults_file)};\n"


PLUGIN_SOURCE = f"""<?php
// {HEADER}.
// Tell Dovecot the browser's address (IMAP ID x-originating-ip, before LOGIN). Dovecot
// believes it from its login_trusted_networks only, so the brute-force limits count the
// browser's address rather than the webmail host's.
class {PLUGIN} extends rcube_plugin
{{
    public function init()
    {{
        $this->add_hook('storage_connect', [$this, 'storage_connect']);
    }}

    public function storage_connect($args)
    {{
        $args['preauth_ident'] = ['x-originating-ip' => rcube_utils::remote_addr()];
        return $args;
    }}
}}
"""


def nginx_server(webmail: Webmail) -> str:
    return f"""# {HEADER}: Roundcube over HTTPS; edits are lost.
server {{
    listen {webmail.listen} ssl;
    server_name {webmail.server_name};
    server_tokens off;

    ssl_certificate {webmail.tls.cert_file};
    ssl_certificate_key {webmail.tls.key_file};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers off;
    ssl_session_tickets off;

    # Roundcube sets X-Frame-Options (sameorigin: its preview pane is a frame) and its own
    # Content-Security-Policy for message bodies.
    add_header Strict-Transport-Security "max-age=31536000" always;
    add_header X-Content-Type-Options "nosniff" always;
    add_header Referrer-Policy "same-origin" always;

    root {webmail.install_path / "public_html"};
    index index.php;
    client_max_body_size 25m;

    location ~ /\\. {{
        deny all;
    }}
    location ~ \\.php$ {{
        try_files $uri =404;
        include /etc/nginx/fastcgi_params;
        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
        fastcgi_param HTTPS on;
        fastcgi_pass unix:{webmail.fpm_socket};
    }}
}}
"""


def fpm_pool(webmail: Webmail) -> str:
    return f"""; {HEADER}: the PHP-FPM pool of Roundcube; edits are lost.
[postmeister-webmail]
user = {webmail.user}
group = {webmail.user}
listen = {webmail.fpm_socket}
listen.owner = {webmail.user}
listen.group = {webmail.user}
listen.mode = 0660
pm = ondemand
pm.max_children = 16
pm.process_idle_timeout = 60s
clear_env = yes
env[ROUNDCUBE_CONFIG_DIR] = {webmail.config_dir}
php_admin_flag[display_errors] = off
php_admin_flag[expose_php] = off
php_admin_value[upload_max_filesize] = 25M
php_admin_value[post_max_size] = 26M
php_admin_value[memory_limit] = 128M
"""
