"""`postmeister dataplane install` / `uninstall` into a staging root that holds a copy of a
real Debian Postfix and Dovecot configuration: the dry run shows exactly what changes and
writes nothing, install is idempotent, uninstall gives the original tree back byte for byte,
and the service units pass `systemd-analyze verify`."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from postmeister.dataplane import install as inst
from postmeister.dataplane.render.model import RenderedFile
from tests.support.processes import CliWorker, cli

BACKUPS = Path("var/lib/postmeister/install-backup")


def debian_file(*candidates: str) -> Path:
    """The machine's file, or the Debian package's pristine copy (what postinst installs)."""
    for candidate in candidates:
        if Path(candidate).is_file():
            return Path(candidate)
    pytest.skip(f"none of {candidates} (install scripts/install-dataplane-packages)")


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc" / "postfix").mkdir(parents=True)
    main_cf = debian_file("/etc/postfix/main.cf", "/usr/share/postfix/main.cf.debian")
    master_cf = debian_file("/etc/postfix/master.cf", "/usr/share/postfix/master.cf.dist")
    shutil.copy2(main_cf, root / "etc" / "postfix" / "main.cf")
    shutil.copy2(master_cf, root / "etc" / "postfix" / "master.cf")
    # An operator's own submission service, which the managed block replaces.
    with (root / "etc" / "postfix" / "master.cf").open("a") as handle:
        handle.write("submission inet n - y - - smtpd\n  -o syslog_name=postfix/mine\n")
    # Like the e2e tests, these need root and Debian's packages (scripts/test installs them).
    assert Path("/etc/dovecot/dovecot.conf").is_file(), "needs Debian's dovecot-core"
    shutil.copytree("/etc/dovecot", root / "etc" / "dovecot", symlinks=True)
    return root


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(tmp_path / "data"),
        "POSTMEISTER_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'pm.sqlite3'}",
    }


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file (content, mode) and directory (mode) below `root`, backups left out."""
    tree: dict[str, tuple[bytes, int]] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative == BACKUPS or BACKUPS in relative.parents:
            continue
        if BACKUPS.is_relative_to(relative):
            continue  # var/, var/lib/, … created to hold the backups
        mode = stat.S_IMODE(path.lstat().st_mode)
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        tree[str(relative)] = (content, mode)
    return tree


def run(worker: CliWorker, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = worker("dataplane", *args, env=env)
    assert result.returncode == 0, result.stderr
    return result


def test_dry_run_shows_what_changes_and_writes_nothing(
    staging: Path, env: dict[str, str], postmeister_cli: CliWorker
) -> None:
    before = snapshot(staging)
    result = run(postmeister_cli, env, "install", "--root", str(staging), "--dry-run")
    assert snapshot(staging) == before
    assert not (staging / "var").exists()
    status = {
        line.split()[1]: line.split()[0]
        for line in result.stdout.splitlines()
        if line.split()[:1] in (["new"], ["changed"], ["unchanged"])
    }
    assert status["/etc/postfix/main.cf"] == "changed"
    assert status["/etc/postfix/master.cf"] == "changed"
    assert status["/etc/dovecot/conf.d/99-postmeister.conf"] == "new"
    assert status["/etc/systemd/system/postmeister.service"] == "new"
    assert "/etc/dovecot/dovecot.conf" not in status  # Debian's conf.d include is enough
    # The database password files' content is never printed.
    assert "(secret:" in result.stdout
    assert "root:postmeister" in result.stdout  # the environment file's wanted owner

    # Exactly what install writes: the printed diffs, applied with patch(1) to a copy of
    # the tree, give the installed tree (the secrets aside, whose content is not shown).
    expected = staging.parent / "expected"
    shutil.copytree(staging, expected, symlinks=True)
    diffs = result.stdout[result.stdout.index("--- ") :]
    diffs = "".join(
        line for line in diffs.splitlines(keepends=True) if not line.startswith("(secret:")
    )
    patched = subprocess.run(
        ["patch", "-p1", "--batch", "--silent", "-d", str(expected)],
        input=diffs,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert patched.returncode == 0, patched.stdout + patched.stderr
    run(postmeister_cli, env, "install", "--root", str(staging))
    secrets = {"etc/postmeister/postmeister.env", "etc/dovecot/postmeister-auth-policy.conf.ext"}
    contents = {path: content for path, (content, _) in snapshot(staging).items()}
    wanted = {path: content for path, (content, _) in snapshot(expected).items()}
    assert {k: v for k, v in contents.items() if k not in secrets} == {
        k: v for k, v in wanted.items() if k not in secrets
    }
    assert secrets <= contents.keys()
    # master.cf: the operator's submission entry is commented out; main.cf keeps every line.
    master = (staging / "etc/postfix/master.cf").read_text()
    assert f"{inst.DISABLED}submission inet n - y - - smtpd\n" in master
    assert f"{inst.DISABLED}  -o syslog_name=postfix/mine\n" in master
    assert (
        (staging / "etc/postfix/main.cf")
        .read_text()
        .startswith(before["etc/postfix/main.cf"][0].decode())
    )


def test_install_is_idempotent_and_uninstall_restores_the_tree(
    staging: Path, env: dict[str, str], postmeister_cli: CliWorker
) -> None:
    os.chmod(staging / "etc/postfix/main.cf", 0o640)  # an operator's own mode survives
    before = snapshot(staging)
    first = run(postmeister_cli, env, "install", "--root", str(staging))
    assert "wrote /etc/postfix/main.cf" in first.stderr
    assert "units not enabled" in first.stderr
    installed = snapshot(staging)
    assert installed != before
    env_file = staging / "etc/postmeister/postmeister.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o640
    assert (
        stat.S_IMODE((staging / "etc/dovecot/postmeister-auth-policy.conf.ext").stat().st_mode)
        == 0o640
    )
    assert "root:postmeister" in first.stderr  # the wanted owner, recorded
    (backup,) = (staging / BACKUPS).iterdir()
    manifest = json.loads((backup / "manifest.json").read_text())
    entries = {entry["path"]: entry for entry in manifest["files"]}
    assert entries["/etc/postfix/main.cf"]["mode_before"] == "0640"
    assert entries["/etc/postmeister/milter.json"]["sha256_before"] == "absent"

    second = run(postmeister_cli, env, "install", "--root", str(staging))
    assert "nothing to do" in second.stderr
    assert snapshot(staging) == installed
    assert len(list((staging / BACKUPS).iterdir())) == 1
    dry = run(postmeister_cli, env, "install", "--root", str(staging), "--dry-run")
    assert "---" not in dry.stdout

    restored = run(postmeister_cli, env, "uninstall", "--root", str(staging))
    assert "removed /etc/systemd/system/postmeister.service" in restored.stderr
    assert snapshot(staging) == before
    assert json.loads((backup / "manifest.json").read_text())["restored"] is not None
    again = postmeister_cli("dataplane", "uninstall", "--root", str(staging), env=env)
    assert again.returncode != 0
    assert "nothing to restore" in again.stderr


def test_uninstall_refuses_files_edited_after_install(
    staging: Path, env: dict[str, str], postmeister_cli: CliWorker
) -> None:
    before = snapshot(staging)
    run(postmeister_cli, env, "install", "--root", str(staging))
    with (staging / "etc/postfix/main.cf").open("a") as handle:
        handle.write("smtpd_banner = edited later\n")
    refused = postmeister_cli("dataplane", "uninstall", "--root", str(staging), env=env)
    assert refused.returncode != 0
    assert "/etc/postfix/main.cf" in refused.stderr and "--force" in refused.stderr
    assert "smtpd_banner = edited later" in (staging / "etc/postfix/main.cf").read_text()
    run(postmeister_cli, env, "uninstall", "--root", str(staging), "--force")
    assert snapshot(staging) == before


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_installed_units_pass_systemd_analyze_verify(
    staging: Path, env: dict[str, str]
) -> None:
    # The real entry point as its own process (the units name this executable).
    result = cli("dataplane", "install", "--root", str(staging), env=env)
    assert result.returncode == 0, result.stderr
    units = sorted((staging / "etc/systemd/system").glob("*.service"))
    assert [unit.name for unit in units] == [
        "postmeister-authpolicy.service",
        "postmeister-milter.service",
        "postmeister-opendkim-rsa.service",
        "postmeister-postsrsd.service",
        "postmeister.service",
    ]
    verify = subprocess.run(
        ["systemd-analyze", "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown or misspelt settings are only warnings: any output counts as a failure.
    assert (verify.returncode, verify.stderr, verify.stdout) == (0, "", "")
    controller = (staging / "etc/systemd/system/postmeister.service").read_text()
    assert "User=postmeister\n" in controller and "NoNewPrivileges=yes\n" in controller
    assert f"ReadWritePaths={env['POSTMEISTER_DATA_DIR']}" in controller
    milter = (staging / "etc/systemd/system/postmeister-milter.service").read_text()
    assert "DynamicUser=yes\n" in milter and "SupplementaryGroups=postfix\n" in milter
    assert "--config /etc/postmeister/milter.json" in milter


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above is real: a unit naming a missing binary fails it."""
    unit = tmp_path / "broken.service"
    unit.write_text("[Service]\nExecStart=/nonexistent/postmeister serve\n")
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verify.returncode != 0 or verify.stderr


# --- the plan, pure ----------------------------------------------------------------------------


def test_merge_block_replaces_its_own_block_only() -> None:
    once = inst.merge_block("a = 1\n", "b = 2\n")
    assert once == f"a = 1\n{inst.BEGIN}\nb = 2\n{inst.END}\n"
    assert inst.merge_block(once, "b = 2\n") == once
    assert inst.merge_block(once, "b = 3\n") == f"a = 1\n{inst.BEGIN}\nb = 3\n{inst.END}\n"


def test_a_block_without_its_end_is_refused_not_truncated() -> None:
    with pytest.raises(inst.InstallError, match="no `# END postmeister` line"):
        inst.merge_block(f"a = 1\n{inst.BEGIN}\nb = 2\nmine = 3\n", "b = 2\n")


def test_disable_service_comments_out_the_entry_and_its_options_only() -> None:
    master = "smtp inet n - y - - smtpd\nsubmission inet n - y - - smtpd\n  -o a=b\npickup unix n\n"
    assert inst.disable_service(master, "submission") == (
        "smtp inet n - y - - smtpd\n"
        f"{inst.DISABLED}submission inet n - y - - smtpd\n"
        f"{inst.DISABLED}  -o a=b\n"
        "pickup unix n\n"
    )


def test_plan_warns_when_the_srs_domain_is_a_local_destination() -> None:
    block = "myhostname = mail.example.org\nrelay_domains = mail.example.org\n"
    rendered = [RenderedFile("postfix/main.cf.postmeister", block)]

    def warnings(existing: str) -> list[str]:
        current: dict[PurePosixPath, bytes | None] = {inst.MAIN_CF: existing.encode()}
        found = inst.plan(rendered, current, secret_group="postfix", environment="").warnings
        return [w for w in found if "SRS domain" in w]

    debian = "mydestination = $myhostname, localhost.example.org, localhost\n"
    assert warnings(debian) == [
        f"{inst.MAIN_CF}: mydestination includes the SRS domain mail.example.org: bounces "
        "to forwarded mail would be refused as unknown local users; remove it from "
        'mydestination or set POSTMEISTER_SRS__DOMAIN to another name (README "SRS")'
    ]
    assert warnings("mydestination = localhost\n") == []
    assert warnings("mydestination =\n") == []


def test_plan_warns_about_parameters_it_overrides() -> None:
    rendered = [RenderedFile("postfix/main.cf.postmeister", "smtpd_milters = inet:x\n")]
    current: dict[PurePosixPath, bytes | None] = {inst.MAIN_CF: b"smtpd_milters = inet:mine\n"}
    plan = inst.plan(rendered, current, secret_group="postfix", environment="")
    assert any("smtpd_milters" in warning for warning in plan.warnings)
    (main,) = [c for c in plan.changes if c.target.path == inst.MAIN_CF]
    assert main.status == "changed"


def in_mount_namespace(staging: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` where /etc/postfix and /etc/dovecot are the staging tree's (a private
    mount namespace: the machine's own files stay as they are, and it ends with the shell)."""
    binds = " && ".join(
        f"mount --bind {staging / 'etc' / name} /etc/{name}" for name in ("postfix", "dovecot")
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec", f"{binds}\n{script}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_postfix_and_dovecot_accept_the_installed_configuration(
    staging: Path, env: dict[str, str], postmeister_cli: CliWorker
) -> None:
    run(postmeister_cli, env, "install", "--root", str(staging))
    result = in_mount_namespace(
        staging,
        "postconf -n > /dev/null\n"
        "postconf -h virtual_transport smtpd_milters\n"
        "postconf -M submission/inet | wc -l\n"
        "doveconf -n > /dev/null\n"
        "doveconf -h mail_location auth_username_format\n"
        "doveconf -n | grep -c 'driver = pam' || true\n",
    )
    assert result.returncode == 0, result.stderr
    # No warning at all: every map the installed main.cf names exists at its final path.
    assert result.stderr == ""
    assert result.stdout.split("\n") == [
        "lmtp:inet:127.0.0.1:24",
        "$postmeister_antispam_milter",
        "1",  # one active submission service: Postmeister's, the operator's is commented out
        "maildir:~/Maildir",  # conf.d/99-postmeister.conf wins over Debian's 10-mail.conf
        "%Lu",
        "0",  # Debian's PAM passdb is off: the system's Unix accounts cannot log in
        "",
    ]


def test_two_installs_are_undone_one_by_one(
    staging: Path, env: dict[str, str], postmeister_cli: CliWorker
) -> None:
    original = snapshot(staging)
    run(postmeister_cli, env, "install", "--root", str(staging))
    first = snapshot(staging)
    renamed = {**env, "POSTMEISTER_DATAPLANE__HOSTNAME": "mx.example.net"}
    dry = run(postmeister_cli, renamed, "install", "--root", str(staging), "--dry-run")
    assert "+  postmaster_address = postmaster@mx.example.net\n" in dry.stdout
    run(postmeister_cli, renamed, "install", "--root", str(staging))
    assert len(list((staging / BACKUPS).iterdir())) == 2
    run(postmeister_cli, env, "uninstall", "--root", str(staging))
    assert snapshot(staging) == first
    run(postmeister_cli, env, "uninstall", "--root", str(staging))
    assert snapshot(staging) == original


def test_a_loosened_mode_is_a_change_install_repairs(
    staging: Path, env: dict[str, str], postmeister_cli: CliWorker
) -> None:
    run(postmeister_cli, env, "install", "--root", str(staging))
    secret = staging / "etc/postmeister/postmeister.env"
    os.chmod(secret, 0o644)
    dry = run(postmeister_cli, env, "install", "--root", str(staging), "--dry-run")
    assert "changed   /etc/postmeister/postmeister.env (0640 root:postmeister)" in dry.stdout
    assert "mode 0644 -> 0640" in dry.stdout
    run(postmeister_cli, env, "install", "--root", str(staging))
    assert stat.S_IMODE(secret.stat().st_mode) == 0o640


def test_database_passwords_stay_out_of_the_diffs_and_world_readable_files(
    staging: Path, env: dict[str, str], postmeister_cli: CliWorker
) -> None:
    password = "s3cret-pw-only-in-secret-files"
    pg = {**env, "POSTMEISTER_DATABASE_URL": f"postgresql+psycopg://pm:{password}@127.0.0.1/pm"}
    dry = run(postmeister_cli, pg, "install", "--root", str(staging), "--dry-run")
    assert password not in dry.stdout + dry.stderr
    run(postmeister_cli, pg, "install", "--root", str(staging))
    holding = [
        path
        for path in staging.rglob("*")
        if path.is_file()
        and BACKUPS not in path.relative_to(staging).parents
        and password.encode() in path.read_bytes()
    ]
    assert {str(path.relative_to(staging)) for path in holding} >= {
        "etc/postmeister/milter.json",
        "etc/postmeister/postmeister.env",
        "etc/postfix/virtual-domains.cf",
        "etc/dovecot/postmeister-sql.conf.ext",
    }
    assert {oct(stat.S_IMODE(path.stat().st_mode)) for path in holding} == {oct(0o640)}
    milter = (staging / "etc/systemd/system/postmeister-milter.service").read_text()
    assert "Wants=postgresql.service\n" in milter and "ReadWritePaths" not in milter


def test_the_smarthost_password_is_installed_only_into_its_root_map(
    staging: Path, env: dict[str, str], postmeister_cli: CliWorker, tmp_path: Path
) -> None:
    password = "relay-pw-only-in-the-map"
    password_file = tmp_path / "relay-password"
    password_file.write_text(password + "\n")
    relayed = {
        **env,
        "POSTMEISTER_DATAPLANE__OUTBOUND_RELAY": "[smtp.relay.example]:587",
        "POSTMEISTER_DATAPLANE__OUTBOUND_RELAY_USERNAME": "mail-node-1",
        "POSTMEISTER_DATAPLANE__OUTBOUND_RELAY_PASSWORD_FILE": str(password_file),
    }
    dry = run(postmeister_cli, relayed, "install", "--root", str(staging), "--dry-run")
    assert password not in dry.stdout + dry.stderr
    run(postmeister_cli, relayed, "install", "--root", str(staging))
    relay_map = staging / "etc/postfix/relay-password"
    assert relay_map.read_text() == f"[smtp.relay.example]:587 mail-node-1:{password}\n"
    assert stat.S_IMODE(relay_map.stat().st_mode) == 0o640
    holding = {
        str(path.relative_to(staging))
        for path in staging.rglob("*")
        if path.is_file()
        and BACKUPS not in path.relative_to(staging).parents
        and password.encode() in path.read_bytes()
    }
    assert holding == {"etc/postfix/relay-password"}
    main_cf = (staging / "etc/postfix/main.cf").read_text()
    assert "smtp_sasl_password_maps = texthash:/etc/postfix/relay-password" in main_cf


def test_a_data_dir_holding_the_backups_is_refused(
    staging: Path, env: dict[str, str], postmeister_cli: CliWorker
) -> None:
    """The controller writes its data dir; root restores what a manifest there names."""
    unsafe = {**env, "POSTMEISTER_DATA_DIR": "/var/lib/postmeister"}
    result = postmeister_cli("dataplane", "install", "--root", str(staging), env=unsafe)
    assert result.returncode != 0
    assert "would hold the install backups" in result.stderr
    assert not (staging / "var").exists()


WEBMAIL_FILES = {
    "/etc/postmeister/webmail/config.inc.php": "(0640 root:www-data)",
    "/etc/postmeister/webmail/defaults.inc.php": "(0644 root:root)",
    "/var/lib/roundcube/plugins/postmeister_client_ip/postmeister_client_ip.php": "(0644 root:root)",
    "/etc/nginx/conf.d/postmeister-webmail.conf": "(0644 root:root)",
    "/etc/php/8.2/fpm/pool.d/postmeister-webmail.conf": "(0644 root:root)",
}


@pytest.fixture
def webmail_env(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "POSTMEISTER_DATAPLANE__TLS_CERT_FILE": "/etc/ssl/mail.pem",
        "POSTMEISTER_DATAPLANE__TLS_KEY_FILE": "/etc/ssl/private/mail.key",
        "POSTMEISTER_DATAPLANE__TRUSTED_NETWORKS": '["127.0.0.1/32"]',
    }


def test_with_webmail_adds_roundcube_nginx_and_php_fpm_and_uninstall_removes_them(
    staging: Path, webmail_env: dict[str, str], postmeister_cli: CliWorker
) -> None:
    plain = run(postmeister_cli, webmail_env, "install", "--root", str(staging), "--dry-run")
    assert not any(path in plain.stdout for path in WEBMAIL_FILES)

    dry = run(
        postmeister_cli,
        webmail_env,
        "install",
        "--root",
        str(staging),
        "--dry-run",
        "--with-webmail",
    )
    for path, owner in WEBMAIL_FILES.items():
        assert f"new       {path} {owner}" in dry.stdout
    des_key = (Path(webmail_env["POSTMEISTER_DATA_DIR"]) / "webmail-des-key").read_text().strip()
    assert des_key not in dry.stdout  # the session key is a secret: no diff shown
    assert "fastcgi_pass unix:/run/php/postmeister-webmail.sock;" in dry.stdout
    assert "env[ROUNDCUBE_CONFIG_DIR] = /etc/postmeister/webmail" in dry.stdout
    assert "ssl_certificate /etc/ssl/mail.pem;" in dry.stdout

    before = snapshot(staging)
    installed = run(
        postmeister_cli, webmail_env, "install", "--root", str(staging), "--with-webmail"
    )
    assert "sqlite.initial.sql" in installed.stderr  # the schema step is the operator's
    config = (staging / "etc/postmeister/webmail/config.inc.php").read_text()
    assert f"$config['des_key'] = '{des_key}';" in config
    assert "managesieve" not in config
    assert (
        stat.S_IMODE((staging / "etc/postmeister/webmail/config.inc.php").stat().st_mode) == 0o640
    )
    assert "/etc/postmeister/webmail/config.inc.php root:www-data" in installed.stderr
    # Debian's own Roundcube configuration stays as the package left it.
    assert not (staging / "etc/roundcube").exists()

    restored = run(postmeister_cli, webmail_env, "uninstall", "--root", str(staging))
    for path in WEBMAIL_FILES:
        assert f"removed {path}" in restored.stderr
    assert snapshot(staging) == before


def test_with_webmail_needs_the_certificate_and_a_trusted_loopback(
    staging: Path, env: dict[str, str], webmail_env: dict[str, str], postmeister_cli: CliWorker
) -> None:
    untrusted = {**webmail_env, "POSTMEISTER_DATAPLANE__TRUSTED_NETWORKS": "[]"}
    for broken, message in ((env, "TLS_CERT_FILE"), (untrusted, "TRUSTED_NETWORKS")):
        result = postmeister_cli(
            "dataplane", "install", "--root", str(staging), "--with-webmail", env=broken
        )
        assert result.returncode != 0
        assert message in result.stderr
    assert not (staging / "var").exists()
