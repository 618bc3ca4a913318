"""`postmeister dataplane install` / `uninstall`: the rendered data plane, written into the
system's own Postfix, Dovecot and systemd configuration, with a backup of everything it
replaces.

Two halves:

- **the plan** (`plan`, pure): the rendered files and what is on disk now in, the target
  files out, each new, changed or unchanged, with a unified diff. Postfix's `main.cf` and
  `master.cf` are the operator's: Postmeister owns one marked block at their end (Postfix
  takes the last value of a parameter, so the block wins) and comments out an active
  `submission` entry, which the block replaces. Dovecot's `dovecot.conf` is not touched:
  the rendered `postmeister.conf` becomes `conf.d/99-postmeister.conf`, which Debian's
  `!include conf.d/*.conf` reads last.
- **the file I/O** (`read_current`, `apply`, `uninstall`): atomic writes (a temporary file
  in the same directory, fsync, rename, fsync of the directory), a backup of every file it
  replaces or creates under `<root>/var/lib/postmeister/install-backup/<timestamp>/` with a
  manifest, and the restore from the newest backup.

Owners are set only on a real installation (`--root /`, run as root). Otherwise (a staging
root, or not root) the wanted owner is recorded in the manifest and printed, and the mode is
set all the same, so the secrets are never world-readable.
"""

from __future__ import annotations

import contextlib
import difflib
import grp
import hashlib
import ipaddress
import json
import os
import pwd
import re
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from postmeister.config import Settings
from postmeister.dataplane.render import webmail
from postmeister.dataplane.render.model import (
    Endpoint,
    PostgresDatabase,
    RenderedFile,
    Site,
    SqliteDatabase,
    Tls,
)
from postmeister.dataplane.render.systemd import Units, render_units

# Where the renderers are told the files will live (`Site.config_dir`): the rendered
# `postfix/…` and `dovecot/…` files land in /etc/postfix and /etc/dovecot.
CONFIG_DIR = Path("/etc")
POSTMEISTER_ETC = PurePosixPath("/etc/postmeister")
MILTER_CONFIG = POSTMEISTER_ETC / "milter.json"
AUTHPOLICY_CONFIG = POSTMEISTER_ETC / "authpolicy.json"
ENVIRONMENT_FILE = POSTMEISTER_ETC / "postmeister.env"
SYSTEMD_DIR = PurePosixPath("/etc/systemd/system")
MAIN_CF = PurePosixPath("/etc/postfix/main.cf")
MASTER_CF = PurePosixPath("/etc/postfix/master.cf")
DOVECOT_CONF = PurePosixPath("/etc/dovecot/dovecot.conf")
# Debian's 10-auth.conf includes the PAM passdb of the system's users; beside Postmeister's
# passdbs it would let every Unix account log in to IMAP, POP3 and SMTP AUTH.
DOVECOT_AUTH_CONF = PurePosixPath("/etc/dovecot/conf.d/10-auth.conf")
SYSTEM_USERS_INCLUDE = re.compile(r"^([ \t]*!include[ \t]+auth-system\.conf\.ext[ \t]*)$", re.M)
BACKUP_DIR = PurePosixPath("/var/lib/postmeister/install-backup")

BEGIN = "# BEGIN postmeister: managed by `postmeister dataplane install`; edits are lost"
END = "# END postmeister"
DISABLED = "#postmeister-disabled# "

# The webmail (`install --with-webmail`): Roundcube reads its configuration from
# WEBMAIL_CONFIG_DIR (Debian's /etc/roundcube is left alone), its plugins from Debian's tree;
# nginx and PHP-FPM read Debian's conf.d and pool.d.
WEBMAIL_CONFIG_DIR = POSTMEISTER_ETC / "webmail"
WEBMAIL_DATABASE = PurePosixPath("/var/lib/postmeister/webmail/roundcube.sqlite")
WEBMAIL_FPM_SOCKET = PurePosixPath("/run/php/postmeister-webmail.sock")
WEBMAIL = {
    webmail.CONFIG_FILE: WEBMAIL_CONFIG_DIR / "config.inc.php",
    webmail.DEFAULTS_FILE: WEBMAIL_CONFIG_DIR / "defaults.inc.php",
    webmail.PLUGIN_FILE: PurePosixPath(str(webmail.DEBIAN_INSTALL_PATH))
    / PurePosixPath(webmail.PLUGIN_FILE).relative_to("webmail"),
    webmail.NGINX_FILE: PurePosixPath("/etc/nginx/conf.d/postmeister-webmail.conf"),
    webmail.FPM_POOL_FILE: PurePosixPath("/etc/php/8.2/fpm/pool.d/postmeister-webmail.conf"),
}

# Rendered path → where it is installed (all others: CONFIG_DIR / path).
RELOCATED = {
    "dovecot/postmeister.conf": PurePosixPath("/etc/dovecot/conf.d/99-postmeister.conf"),
    "milter.json": MILTER_CONFIG,
    "authpolicy.json": AUTHPOLICY_CONFIG,
    **WEBMAIL,
}
# Rendered fragments merged into the operator's file as the managed block.
MERGED = {"postfix/main.cf.postmeister": MAIN_CF, "postfix/master.cf.postmeister": MASTER_CF}

Status = Literal["new", "changed", "unchanged"]


class InstallError(RuntimeError):
    """Install or uninstall cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """One file as the data plane needs it, at its absolute path on the server."""

    path: PurePosixPath
    content: bytes
    mode: int
    owner: str = "root"
    group: str = "root"
    secret: bool = False


@dataclass(frozen=True)
class Change:
    target: Target
    status: Status
    before: bytes | None
    diff: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = ()

    @property
    def pending(self) -> list[Change]:
        return [change for change in self.changes if change.status != "unchanged"]


# --- the plan (pure) ---------------------------------------------------------------------------


def target_paths(rendered: list[RenderedFile]) -> list[PurePosixPath]:
    """Every path `plan` needs the current content of (the merged files included)."""
    paths = [_destination(file.path) for file in rendered]
    return [*paths, ENVIRONMENT_FILE, DOVECOT_CONF, DOVECOT_AUTH_CONF]


def _destination(rendered_path: str) -> PurePosixPath:
    if rendered_path in MERGED:
        return MERGED[rendered_path]
    if rendered_path in RELOCATED:
        return RELOCATED[rendered_path]
    if rendered_path.startswith("systemd/"):
        return SYSTEMD_DIR / rendered_path.removeprefix("systemd/")
    return PurePosixPath(CONFIG_DIR) / rendered_path


def environment_file(environ: Mapping[str, str], *, data_dir: Path, database_url: str) -> str:
    """The controller's settings (every POSTMEISTER_* variable of the installing shell, with
    the data directory and database resolved), as a systemd EnvironmentFile."""
    values = {k: v for k, v in environ.items() if k.startswith("POSTMEISTER_")}
    values["POSTMEISTER_DATA_DIR"] = str(data_dir)
    values["POSTMEISTER_DATABASE_URL"] = database_url
    lines = ["# Rendered by `postmeister dataplane install`: the controller's settings."]
    for key in sorted(values):
        escaped = values[key].replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key}="{escaped}"')
    return "\n".join(lines) + "\n"


def merge_block(existing: str, block: str) -> str:
    """`existing` with Postmeister's managed block (replaced if present) at its end."""
    kept = _without_block(existing)
    if kept and not kept.endswith("\n"):
        kept += "\n"
    return f"{kept}{BEGIN}\n{block.rstrip(chr(10))}\n{END}\n"


def _without_block(text: str) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    inside = False
    for line in lines:
        if line.rstrip("\n") == BEGIN:
            inside = True
        elif inside and line.rstrip("\n") == END:
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        # Dropping everything after a lone BEGIN line would lose the operator's settings.
        raise InstallError(f"a `{BEGIN}` line has no `{END}` line: fix the file by hand")
    return "".join(out)


def disable_service(master_cf: str, service: str) -> str:
    """Comment out an active `service` entry (and its continuation lines) of master.cf."""
    out: list[str] = []
    inside = False
    for line in master_cf.splitlines(keepends=True):
        if re.match(rf"{re.escape(service)}\s", line):
            inside = True
        elif inside and not (line[:1].isspace() and line.strip()):
            inside = False
        out.append(DISABLED + line if inside else line)
    return "".join(out)


def _parameters(main_cf: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for match in re.finditer(r"^([A-Za-z0-9_]+)\s*=[ \t]*(.*(?:\n[ \t]+.*)*)", main_cf, re.M):
        values[match.group(1)] = " ".join(match.group(2).split())
    return values


def _main_cf_warnings(existing: str, block: str) -> list[str]:
    theirs = _parameters(_without_block(existing))
    ours = _parameters(block)
    return [
        f"{MAIN_CF}: {name} = {theirs[name]!r} is overridden by Postmeister's "
        f"{ours[name]!r} (merge them by hand in the managed block's place if you need both)"
        for name in sorted(theirs.keys() & ours.keys())
        if theirs[name] != ours[name] and theirs[name]
    ] + _srs_domain_warnings(theirs, ours)


def _srs_domain_warnings(theirs: dict[str, str], ours: dict[str, str]) -> list[str]:
    """The SRS domain (the block's `relay_domains`, render/srs.py) must not be a local
    destination: Debian's main.cf lists `$myhostname`, SRS's default domain, in
    `mydestination`, and Postfix would then refuse every bounce to a forwarded message as
    an unknown local user."""
    domain = ours.get("relay_domains")
    if not domain or not theirs.get("mydestination"):
        return []
    variables = {
        "$myhostname": ours.get("myhostname") or theirs.get("myhostname"),
        "$mydomain": ours.get("mydomain") or theirs.get("mydomain"),
    }
    local = {
        (variables.get(name) or name).lower()
        for name in re.split(r"[\s,]+", theirs["mydestination"])
        if name
    }
    if domain.lower() not in local:
        return []
    return [
        f"{MAIN_CF}: mydestination includes the SRS domain {domain}: bounces to forwarded "
        "mail would be refused as unknown local users; remove it from mydestination or set "
        'POSTMEISTER_SRS__DOMAIN to another name (README "SRS")'
    ]


def plan(
    rendered: list[RenderedFile],
    current: Mapping[PurePosixPath, bytes | None],
    *,
    secret_group: str,
    environment: str,
    modes: Mapping[PurePosixPath, int] | None = None,
    controller_group: str = "postmeister",
) -> Plan:
    """What `install` would do, from the rendered files and the current content (None:
    absent) and modes of every `target_paths(rendered)`. A merged file keeps its mode."""
    modes = modes or {}
    warnings: list[str] = []
    targets: list[Target] = []
    for file in rendered:
        path = _destination(file.path)
        if file.path in MERGED:
            existing = (current.get(path) or b"").decode(errors="surrogateescape")
            if current.get(path) is None:
                warnings.append(f"{path} does not exist: is Postfix configured?")
            if path == MAIN_CF:
                warnings.extend(_main_cf_warnings(existing, file.content))
            else:
                existing = disable_service(existing, "submission")
            content = merge_block(existing, file.content)
            mode = modes.get(path, 0o644)
            targets.append(Target(path, content.encode(errors="surrogateescape"), mode))
        elif file.secret:
            group = file.group or secret_group
            targets.append(Target(path, file.content.encode(), 0o640, group=group, secret=True))
        else:
            targets.append(Target(path, file.content.encode(), 0o644))
    targets.append(
        Target(ENVIRONMENT_FILE, environment.encode(), 0o640, group=controller_group, secret=True)
    )
    auth_conf = current.get(DOVECOT_AUTH_CONF)
    if auth_conf is not None:
        text = auth_conf.decode(errors="surrogateescape")
        without = SYSTEM_USERS_INCLUDE.sub(lambda m: DISABLED + m.group(1), text)
        mode = modes.get(DOVECOT_AUTH_CONF, 0o644)
        targets.append(Target(DOVECOT_AUTH_CONF, without.encode(errors="surrogateescape"), mode))
    dovecot_conf = current.get(DOVECOT_CONF)
    if dovecot_conf is None or b"!include conf.d/*.conf" not in dovecot_conf:
        warnings.append(
            f"{DOVECOT_CONF} does not include conf.d/*.conf: add "
            "`!include conf.d/99-postmeister.conf` yourself"
        )
    changes = tuple(
        _change(target, current.get(target.path), modes.get(target.path)) for target in targets
    )
    return Plan(changes, tuple(warnings))


def _change(target: Target, before: bytes | None, mode: int | None) -> Change:
    diff: tuple[str, ...]
    if before == target.content:
        if mode is None or mode == target.mode:
            return Change(target, "unchanged", before, ())
        diff = (f"{target.path}: mode {mode:04o} -> {target.mode:04o}\n",)
        return Change(target, "changed", before, diff)
    status: Status = "new" if before is None else "changed"
    if target.secret:
        lines = len(target.content.splitlines())
        diff = (f"(secret: {target.path}: {lines} lines, not shown)\n",)
    else:
        diff = tuple(
            difflib.unified_diff(
                (before or b"").decode(errors="replace").splitlines(keepends=True),
                target.content.decode().splitlines(keepends=True),
                fromfile="/dev/null" if before is None else str(target.path),
                tofile=str(target.path),
            )
        )
    return Change(target, status, before, diff)


def describe(plan_: Plan) -> str:
    """The plan as `install --dry-run` prints it: one line per file, then the diffs."""
    lines = [
        f"{change.status:<9} {change.target.path} "
        f"({change.target.mode:04o} {change.target.owner}:{change.target.group})"
        for change in plan_.changes
    ]
    lines.extend(f"warning: {warning}" for warning in plan_.warnings)
    text = "\n".join(lines) + "\n"
    for change in plan_.pending:
        body = "".join(line if line.endswith("\n") else line + "\n" for line in change.diff)
        text += body
    return text


# --- file I/O ------------------------------------------------------------------------------------


def under(root: Path, path: PurePosixPath) -> Path:
    return root / path.relative_to("/")


def read_current(root: Path, paths: list[PurePosixPath]) -> dict[PurePosixPath, bytes | None]:
    current: dict[PurePosixPath, bytes | None] = {}
    for path in paths:
        try:
            current[path] = under(root, path).read_bytes()
        except FileNotFoundError:
            current[path] = None
    return current


def read_modes(root: Path, paths: list[PurePosixPath]) -> dict[PurePosixPath, int]:
    modes: dict[PurePosixPath, int] = {}
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            modes[path] = stat.S_IMODE(under(root, path).stat().st_mode)
    return modes


def sets_owners(root: Path) -> bool:
    """Owners are set on a real installation only (`--root /` as root)."""
    return root.resolve() == Path("/") and os.geteuid() == 0


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _owner_of(path: Path) -> tuple[str, str]:
    st = path.stat()
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return owner, group


def atomic_write(path: Path, content: bytes, mode: int) -> None:
    """Replace `path` with `content` at once: readers see the old file or the new one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chown(path: Path, owner: str, group: str) -> None:
    os.chown(path, pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid)


def _make_parents(root: Path, path: PurePosixPath, created: list[str]) -> None:
    missing = []
    directory = under(root, path).parent
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o755)
        created.append("/" + str(directory.relative_to(root)))


@dataclass
class Installed:
    backup: Path | None
    written: list[PurePosixPath] = field(default_factory=list)
    owners_recorded: list[str] = field(default_factory=list)


def apply(root: Path, plan_: Plan, *, now: datetime | None = None) -> Installed:
    """Write the plan's pending files, after backing up what each replaces. Nothing pending:
    nothing written, no backup."""
    pending = plan_.pending
    if not pending:
        return Installed(backup=None)
    owners = sets_owners(root)
    if owners:
        missing = missing_accounts(pending)
        if missing:
            raise InstallError(
                "missing on this system (nothing written): "
                + ", ".join(missing)
                + "; create the controller's user with `adduser --system --group "
                "--home /var/lib/postmeister/data postmeister` (and install Postfix for its group)"
            )
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    backup = under(root, BACKUP_DIR) / stamp
    backup.mkdir(parents=True, mode=0o700)
    os.chmod(backup, 0o700)
    entries: list[dict[str, Any]] = []
    created_dirs: list[str] = []
    result = Installed(backup=backup)
    for change in pending:
        target = change.target
        on_disk = under(root, target.path)
        entry: dict[str, Any] = {
            "path": str(target.path),
            "sha256_before": "absent",
            "sha256_installed": _sha256(target.content),
            "mode": f"{target.mode:04o}",
            "owner": f"{target.owner}:{target.group}",
            "owner_set": owners,
        }
        if change.before is not None:
            saved = backup / "files" / target.path.relative_to("/")
            saved.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            saved.write_bytes(change.before)
            os.chmod(saved, 0o600)
            owner, group = _owner_of(on_disk)
            entry.update(
                sha256_before=_sha256(change.before),
                mode_before=f"{stat.S_IMODE(on_disk.stat().st_mode):04o}",
                owner_before=f"{owner}:{group}",
            )
        entries.append(entry)
    _make_parents_all(root, pending, created_dirs)
    manifest = {"created": stamp, "files": entries, "created_dirs": created_dirs, "restored": None}
    # The manifest is complete before the first file is replaced: an interrupted install
    # can be undone too (`uninstall --force`: the files it did not reach count as edited).
    atomic_write(backup / "manifest.json", _json(manifest), 0o600)
    for change in pending:
        target = change.target
        on_disk = under(root, target.path)
        atomic_write(on_disk, target.content, target.mode)
        if owners:
            _chown(on_disk, target.owner, target.group)
        elif (target.owner, target.group) != ("root", "root"):
            result.owners_recorded.append(f"{target.path} {target.owner}:{target.group}")
        result.written.append(target.path)
    return result


def missing_accounts(
    changes: list[Change], *, users: tuple[str, ...] = ("postmeister",)
) -> list[str]:
    """The users and groups the plan's files should belong to, and the units' `users`, that
    this system lacks."""
    missing: set[str] = set()
    for user in users:
        try:
            pwd.getpwnam(user)
        except KeyError:
            missing.add(f"user {user}")
    for change in changes:
        try:
            pwd.getpwnam(change.target.owner)
        except KeyError:
            missing.add(f"user {change.target.owner}")
        try:
            grp.getgrnam(change.target.group)
        except KeyError:
            missing.add(f"group {change.target.group}")
    return sorted(missing)


def _make_parents_all(root: Path, pending: list[Change], created: list[str]) -> None:
    for change in pending:
        _make_parents(root, change.target.path, created)


def _json(document: object) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


# --- uninstall -------------------------------------------------------------------------------


@dataclass
class Restored:
    backup: Path
    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def newest_backup(root: Path) -> tuple[Path, dict[str, Any]]:
    """The newest backup not restored yet."""
    base = under(root, BACKUP_DIR)
    candidates = sorted(base.glob("*/manifest.json"), reverse=True) if base.is_dir() else []
    for manifest_file in candidates:
        if sets_owners(root):
            _require_root_only(manifest_file)
        manifest: dict[str, Any] = json.loads(manifest_file.read_text())
        if manifest.get("restored") is None:
            return manifest_file.parent, manifest
    raise InstallError(f"nothing to restore: no backup in {base} that was not restored already")


def _require_root_only(manifest_file: Path) -> None:
    """Uninstall writes, as root, whatever a manifest names: refuse one that anybody but
    root could have put there (the file and every directory up to /var/lib)."""
    for path in (manifest_file, *manifest_file.parents):
        if path == Path("/var/lib"):
            return
        st = path.lstat()
        if st.st_uid != 0 or st.st_mode & 0o022 or stat.S_ISLNK(st.st_mode):
            raise InstallError(
                f"{path} is not root's alone (owner uid {st.st_uid}, mode "
                f"{stat.S_IMODE(st.st_mode):04o}): refusing to restore from {manifest_file.parent}"
            )


def edited_since_install(root: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Files whose content is no longer what install wrote."""
    edited = []
    for entry in manifest["files"]:
        path = under(root, PurePosixPath(entry["path"]))
        try:
            digest = _sha256(path.read_bytes())
        except FileNotFoundError:
            digest = "absent"
        if digest != entry["sha256_installed"]:
            edited.append(entry["path"])
    return edited


def uninstall(root: Path, *, force: bool = False, now: datetime | None = None) -> Restored:
    """Put back every file of the newest install byte for byte (and its mode; its owner on a
    real installation); remove the files it created; mark the backup restored."""
    backup, manifest = newest_backup(root)
    edited = edited_since_install(root, manifest)
    if edited and not force:
        raise InstallError(
            "changed since `dataplane install` (restoring would lose those edits; "
            "--force restores anyway): " + ", ".join(edited)
        )
    owners = sets_owners(root)
    result = Restored(backup=backup)
    for entry in manifest["files"]:
        path = PurePosixPath(entry["path"])
        on_disk = under(root, path)
        if entry["sha256_before"] == "absent":
            with contextlib.suppress(FileNotFoundError):
                on_disk.unlink()
                _fsync_dir(on_disk.parent)
            result.removed.append(str(path))
            continue
        content = (backup / "files" / path.relative_to("/")).read_bytes()
        if _sha256(content) != entry["sha256_before"]:
            raise InstallError(f"the backup of {path} in {backup} is damaged (checksum differs)")
        on_disk.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(on_disk, content, int(entry["mode_before"], 8))
        if owners:
            owner, group = entry["owner_before"].split(":")
            _chown(on_disk, owner, group)
        result.restored.append(str(path))
    for directory in reversed(manifest.get("created_dirs", [])):
        with contextlib.suppress(OSError):
            under(root, PurePosixPath(directory)).rmdir()
    manifest["restored"] = (now or datetime.now(UTC)).isoformat()
    atomic_write(backup / "manifest.json", _json(manifest), 0o600)
    return result


# --- what is installed, and systemd --------------------------------------------------------------


def rendered_for_install(
    settings: Settings, *, environ: Mapping[str, str], executable: Path, with_webmail: bool = False
) -> tuple[list[RenderedFile], str, str]:
    """The production site's files plus the units (and the webmail's, `with_webmail`); the
    environment file; its group.

    The site is rendered for CONFIG_DIR, so the files name their final paths also when they
    are written into a staging root."""
    from postmeister.dataplane import stack
    from postmeister.dataplane.render import render_site

    data_dir = settings.data_dir.resolve()
    backups = Path(str(BACKUP_DIR))
    if data_dir == backups or data_dir in backups.parents:
        # The controller may write its data dir; root restores whatever a manifest there
        # names, so the backups must be out of its reach.
        raise InstallError(
            f"the data directory {data_dir} would hold the install backups ({BACKUP_DIR}): "
            "use another POSTMEISTER_DATA_DIR, e.g. /var/lib/postmeister/data"
        )
    site = stack.production_site(settings, config_dir=CONFIG_DIR)
    database = site.database
    units = Units(
        executable=executable,
        data_dir=data_dir,
        environment_file=Path(str(ENVIRONMENT_FILE)),
        milter_config=Path(str(MILTER_CONFIG)),
        authpolicy_config=Path(str(AUTHPOLICY_CONFIG)),
        sqlite_group=site.sqlite_group,
        sqlite_dir=database.path.parent if isinstance(database, SqliteDatabase) else None,
        local_postgresql=isinstance(database, PostgresDatabase)
        and database.host in ("127.0.0.1", "localhost", "::1"),
        dkim_algorithms=tuple(signer.algorithm for signer in site.dkim_signers),
        opendkim_dir=CONFIG_DIR / "opendkim",
        srs=site.srs,
    )
    environment = environment_file(
        environ, data_dir=data_dir, database_url=settings.resolved_database_url
    )
    rendered = [*render_site(site), *render_units(units), *_relay_password_file(site)]
    if with_webmail:
        rendered.extend(webmail.render_webmail(production_webmail(settings)))
    return rendered, environment, site.sqlite_group


def _relay_password_file(site: Site) -> list[RenderedFile]:
    """The smarthost's SASL password map, read from `outbound_relay_password_file` (never
    in settings, never rendered into main.cf): a secret file of root's group, which Postfix
    opens as root before it drops its privileges."""
    from postmeister.dataplane.render.postfix import relay_password_entry, relay_password_map

    relay = site.relay
    if relay is None or relay.username is None:
        return []
    if relay.password_file is None:
        raise InstallError("outbound_relay_username is set but outbound_relay_password_file not")
    try:
        password = relay.password_file.read_text().strip()
    except OSError as error:
        raise InstallError(f"cannot read the smarthost password file: {error}") from error
    path = PurePosixPath(relay_password_map(site)).relative_to(PurePosixPath(str(CONFIG_DIR)))
    entry = relay_password_entry(relay, password)
    return [RenderedFile(str(path), entry, secret=True, group="root")]


def production_webmail(settings: Settings) -> webmail.Webmail:
    """Roundcube on this server: it reaches Dovecot and Postfix on loopback (127.0.0.1 must
    be in `dataplane.trusted_networks`) and verifies their certificate, against the system's
    CAs, for the name mail clients use; nginx serves the same certificate."""
    from postmeister.dataplane import stack

    dp = settings.dataplane
    if not (dp.tls_cert_file and dp.tls_key_file):
        raise InstallError(
            "--with-webmail serves HTTPS with the mail ports' certificate: set "
            "POSTMEISTER_DATAPLANE__TLS_CERT_FILE and POSTMEISTER_DATAPLANE__TLS_KEY_FILE"
        )
    if not any(ipaddress.ip_address("127.0.0.1") in net for net in dp.trusted_networks):
        raise InstallError(
            "--with-webmail logs in to Dovecot from 127.0.0.1 for the browser: add it to "
            "POSTMEISTER_DATAPLANE__TRUSTED_NETWORKS (e.g. '[\"127.0.0.1/32\"]')"
        )
    client = settings.client
    imap_port = client.imap_tls_port or client.imap_starttls_port
    submission_port = client.submission_tls_port or client.submission_starttls_port
    # ClientSettings requires one port of each.
    assert imap_port is not None
    assert submission_port is not None
    return webmail.Webmail(
        server_name=settings.client_host,
        listen=Endpoint.parse(dp.webmail_address),
        tls=Tls(cert_file=dp.tls_cert_file, key_file=dp.tls_key_file),
        imap=Endpoint("127.0.0.1", imap_port),
        submission=Endpoint("127.0.0.1", submission_port),
        imap_implicit_tls=client.imap_tls_port is not None,
        submission_implicit_tls=client.submission_tls_port is not None,
        tls_peer_name=settings.client_host,
        des_key=stack.kept_secret(settings.data_dir / "webmail-des-key"),
        database=Path(str(WEBMAIL_DATABASE)),
        config_dir=Path(str(WEBMAIL_CONFIG_DIR)),
        fpm_socket=Path(str(WEBMAIL_FPM_SOCKET)),
        log_dir=Path("/var/log/roundcube"),
        temp_dir=webmail.DEBIAN_INSTALL_PATH / "temp",
        product_name=dp.webmail_product_name,
    )


def webmail_next_steps() -> list[str]:
    """What `install --with-webmail` leaves to the operator: Roundcube's database schema,
    and the reloads (the packages' services are the operator's)."""
    directory = WEBMAIL_DATABASE.parent
    return [
        f"install -d -o www-data -g www-data -m 0750 {directory}",
        f"runuser -u www-data -- sqlite3 -init /usr/share/roundcube/SQL/sqlite.initial.sql "
        f"{WEBMAIL_DATABASE} .quit   (once: Roundcube's schema)",
        "systemctl reload php8.2-fpm nginx",
    ]


def unit_names(plan_: Plan) -> list[str]:
    return [c.target.path.name for c in plan_.changes if c.target.path.parent == SYSTEMD_DIR]


def systemd_running(root: Path) -> bool:
    """systemd is the running init of this machine, and `root` is this machine."""
    return root.resolve() == Path("/") and Path("/run/systemd/system").is_dir()


def systemctl(*args: str) -> None:
    result = subprocess.run(
        ["systemctl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise InstallError(f"systemctl {' '.join(args)} failed: {result.stderr.strip()}")
