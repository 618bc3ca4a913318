"""systemd units for what Postmeister itself runs on a mail server: the controller
(`postmeister serve`), the milters and the auth policy service. Pure: `Units` in, files out.

Each unit gets the least rights that work:

- the controller runs as the system user `postmeister` (never root), may write only its
  data directory (and the SQLite database's directory), and joins the SQLite group so that
  Postfix and Dovecot can read what it writes;
- the milters run as a dynamic user (no account to create, nothing owned on disk) that
  joins the SQLite group to read the database, or only reads its configuration for
  PostgreSQL;
- the auth policy service needs neither the database nor any file but its configuration:
  a dynamic user with no extra group; so does postsrsd, which gets its secret as a systemd
  credential.

Ordering: the milters and the auth policy start before Postfix and Dovecot (Postfix answers
4xx while its milter is missing, Dovecot refuses logins while its policy service is), and
everything that reads PostgreSQL starts after it when the database is local.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from postmeister.dataplane.render.model import RenderedFile, Srs
from postmeister.dataplane.render.srs import POSTSRSD, postsrsd_arguments

CONTROLLER_UNIT = "postmeister.service"
MILTER_UNIT = "postmeister-milter.service"
AUTHPOLICY_UNIT = "postmeister-authpolicy.service"
POSTSRSD_UNIT = "postmeister-postsrsd.service"
# Where systemd puts the unit's copy of the SRS secret (a path, not the secret).
SRS_CREDENTIAL_PATH = "${CREDENTIALS_DIRECTORY}/srs-secret"

HEADER = (
    "# Rendered by `postmeister dataplane install`. Do not edit: a drop-in in\n"
    "# /etc/systemd/system/{unit}.d/ survives the next install.\n"
)

# Shared by every unit: no privilege gain, a read-only system, private /tmp, no home
# directories, no kernel or device access, only IP and Unix sockets.
HARDENING = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictSUIDSGID=yes",
    "RestrictRealtime=yes",
    "RestrictNamespaces=yes",
    "LockPersonality=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "UMask=0027",
)


@dataclass(frozen=True)
class Units:
    """What the units need to know, resolved by the caller (`dataplane/install.py`)."""

    # The `postmeister` executable (the console script of the installed package).
    executable: Path
    # The controller's data directory (POSTMEISTER_DATA_DIR): the only place it writes.
    data_dir: Path
    # The environment file with the controller's POSTMEISTER_* settings (a secret: 0640).
    environment_file: Path
    milter_config: Path
    authpolicy_config: Path
    # The group that may read and write the SQLite database (`sqlite_group`).
    sqlite_group: str
    # The directory of the SQLite database (None: PostgreSQL).
    sqlite_dir: Path | None
    # Whether PostgreSQL runs on this machine (order after `postgresql.service`).
    local_postgresql: bool
    controller_user: str = "postmeister"
    # One OpenDKIM process per DKIM algorithm (`render.opendkim`), each with its own unit
    # reading `<opendkim_dir>/<algorithm>.conf`.
    dkim_algorithms: tuple[str, ...] = ()
    opendkim_dir: Path = Path("/etc/opendkim")
    # postsrsd, when SRS is on (`render.srs`).
    srs: Srs | None = None


def _unit(name: str, unit: list[str], service: list[str], wanted_by: str) -> RenderedFile:
    lines = [
        HEADER.format(unit=name).rstrip("\n"),
        "[Unit]",
        *unit,
        "",
        "[Service]",
        *service,
        *HARDENING,
        "",
        "[Install]",
        f"WantedBy={wanted_by}",
    ]
    return RenderedFile(f"systemd/{name}", "\n".join(lines) + "\n")


def _database_ordering(units: Units) -> list[str]:
    if units.local_postgresql:
        return ["After=network.target postgresql.service", "Wants=postgresql.service"]
    return ["After=network.target"]


def controller_unit(units: Units) -> RenderedFile:
    writable = [str(units.data_dir)]
    if units.sqlite_dir is not None and units.sqlite_dir != units.data_dir:
        writable.append(str(units.sqlite_dir))
    service = [
        "Type=simple",
        f"User={units.controller_user}",
        f"Group={units.controller_user}",
        f"EnvironmentFile={units.environment_file}",
        f"WorkingDirectory={units.data_dir}",
        f"ExecStart={units.executable} serve --data-dir {units.data_dir}",
        "Restart=on-failure",
        "RestartSec=2s",
        f"ReadWritePaths={' '.join(writable)}",
    ]
    if units.sqlite_dir is not None:
        # Postfix and Dovecot read the database as this group: new -wal/-shm files and
        # the database keep it.
        service.insert(3, f"SupplementaryGroups={units.sqlite_group}")
    return _unit(
        CONTROLLER_UNIT,
        [
            "Description=Postmeister controller (REST APIs, sync, scheduler)",
            *_database_ordering(units),
        ],
        service,
        "multi-user.target",
    )


def milter_unit(units: Units) -> RenderedFile:
    service = [
        "Type=simple",
        "DynamicUser=yes",
        f"ExecStart={units.executable} dataplane milter --config {units.milter_config}",
        "Restart=on-failure",
        "RestartSec=1s",
    ]
    if units.sqlite_dir is not None:
        # SQLite readers in WAL mode write the -shm file next to the database.
        service[2:2] = [
            f"SupplementaryGroups={units.sqlite_group}",
            f"ReadWritePaths={units.sqlite_dir}",
        ]
    else:
        # milter.json holds the database password: mode 0640, group sqlite_group.
        service.insert(2, f"SupplementaryGroups={units.sqlite_group}")
    return _unit(
        MILTER_UNIT,
        [
            "Description=Postmeister milters (header From on submission, antispam on SMTP)",
            *_database_ordering(units),
            # Postfix answers 4xx (milter_default_action = tempfail) until the milter runs.
            "Before=postfix.service",
        ],
        service,
        "multi-user.target",
    )


def authpolicy_unit(units: Units) -> RenderedFile:
    return _unit(
        AUTHPOLICY_UNIT,
        [
            "Description=Postmeister auth policy (brute-force limits for Dovecot)",
            "After=network.target",
            # Dovecot asks it before every password check.
            "Before=dovecot.service",
        ],
        [
            "Type=simple",
            "DynamicUser=yes",
            f"ExecStart={units.executable} dataplane authpolicy --config {units.authpolicy_config}",
            "Restart=on-failure",
            "RestartSec=1s",
        ],
        "multi-user.target",
    )


def opendkim_unit_name(algorithm: str) -> str:
    return f"postmeister-opendkim-{algorithm}.service"


def opendkim_unit(units: Units, algorithm: str) -> RenderedFile:
    """Debian's OpenDKIM, as a signer of our own: Debian's `opendkim.service` (with
    /etc/opendkim.conf) is left as it is; this unit runs the binary with the rendered
    configuration, as a dynamic user in the SQLite group (it reads the private keys from
    the database, nothing else can), from the database's directory (its SQLite DSN is
    relative, see render/opendkim.py)."""
    service = [
        "Type=simple",
        "DynamicUser=yes",
        f"SupplementaryGroups={units.sqlite_group}",
        f"WorkingDirectory={units.sqlite_dir or '/'}",
        f"ExecStart=/usr/sbin/opendkim -f -x {units.opendkim_dir / f'{algorithm}.conf'}",
        "Restart=on-failure",
        "RestartSec=1s",
    ]
    if units.sqlite_dir is not None:
        service.insert(4, f"ReadWritePaths={units.sqlite_dir}")
    return _unit(
        opendkim_unit_name(algorithm),
        [
            f"Description=OpenDKIM signer for Postmeister ({algorithm} keys from the database)",
            *_database_ordering(units),
            # Submission answers 4xx (milter_default_action = tempfail) until it runs.
            "Before=postfix.service",
        ],
        service,
        "multi-user.target",
    )


def postsrsd_unit(srs: Srs) -> RenderedFile:
    """Debian's postsrsd binary with our tables' ports (Debian's `postsrsd.service` is left
    as it is, on its own ports), as a dynamic user: the secret file is root's alone (0600),
    and systemd hands the unit a copy that only the unit can read (LoadCredential)."""
    arguments = postsrsd_arguments(srs, secret_file=SRS_CREDENTIAL_PATH)
    return _unit(
        POSTSRSD_UNIT,
        [
            "Description=postsrsd for Postmeister (SRS lookup tables for Postfix)",
            "After=network.target",
            # Postfix answers 4xx while a canonical map cannot be asked.
            "Before=postfix.service",
        ],
        [
            "Type=simple",
            "DynamicUser=yes",
            f"LoadCredential=srs-secret:{srs.secret_file}",
            f"ExecStart={POSTSRSD} {' '.join(arguments)}",
            "Restart=on-failure",
            "RestartSec=1s",
        ],
        "multi-user.target",
    )


def render_units(units: Units) -> list[RenderedFile]:
    """The units, as `systemd/<name>` (installed into /etc/systemd/system/)."""
    return [
        controller_unit(units),
        milter_unit(units),
        authpolicy_unit(units),
        *(opendkim_unit(units, algorithm) for algorithm in units.dkim_algorithms),
        *([postsrsd_unit(units.srs)] if units.srs is not None else []),
    ]
