"""`postmeister dataplane`: render the Postfix/Dovecot configuration, run a private stack."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from postmeister.cli.lazy import lazy_module
from postmeister.config import Settings
from postmeister.dataplane.render import render_site
from postmeister.dataplane.render.model import UnsupportedDatabaseError

# The stack's process control (with the certificate code) loads on first use: the other
# `postmeister` commands import this module too (see `postmeister.cli.lazy`).
if TYPE_CHECKING:
    from postmeister.dataplane import stack
else:
    stack = lazy_module("postmeister.dataplane.stack")


@click.group(name="dataplane")
def dataplane() -> None:
    """Postfix and Dovecot reading the controller's database (data-plane contract v1)."""


@dataplane.command()
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the files into.",
)
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the files will live on the mail server (default: --out). The files refer "
    "to each other by absolute path.",
)
def render(out: Path, config_dir: Path | None) -> None:
    """Write the Postfix and Dovecot configuration for the configured database."""
    settings = Settings()
    try:
        site = stack.production_site(settings, config_dir=(config_dir or out).resolve())
    except UnsupportedDatabaseError as error:
        raise click.ClickException(str(error)) from error
    for path in stack.write_files(out, render_site(site), reader_group=site.sqlite_group):
        click.echo(str(path))


@dataplane.command()
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory holding the stack's configuration, queue, mail and logs.",
)
def up(root: Path) -> None:
    """Start a private Postfix + Dovecot on loopback; print their ports as one JSON object."""
    try:
        state = stack.up(Settings(), root)
    except (stack.StackError, UnsupportedDatabaseError) as error:
        raise click.ClickException(str(error)) from error
    sys.stdout.write(json.dumps(state) + "\n")


@dataplane.command()
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
)
def down(root: Path) -> None:
    """Stop the stack started with `up --dir DIR` (by its pid files)."""
    for name in stack.down(root):
        click.echo(f"stopped {name}", err=True)


@dataplane.command()
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A stack started with `up --dir DIR` (default: the installed system's daemons).",
)
def status(root: Path | None) -> None:
    """Whether each daemon answers and can read the contract views; prints JSON.

    Exit code 0 when all do, 1 when any does not (2 for usage errors), for scripts."""
    from postmeister.dataplane.status import stack_targets, status, system_targets

    try:
        targets = stack_targets(root) if root is not None else system_targets(Settings())
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from error
    report = status(targets)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    sys.exit(0 if report["ok"] else 1)


def _root_option(func: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--root",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=Path("/"),
        show_default=True,
        help="Install into this tree instead of the running system (a staging root).",
    )(func)


def _executable() -> Path:
    """The `postmeister` console script the service units start."""
    beside = Path(sys.executable).parent / "postmeister"
    found = beside if beside.exists() else shutil.which("postmeister")
    if found is None:
        raise click.ClickException("cannot find the `postmeister` executable for the units")
    return Path(found).absolute()


@dataplane.command()
@_root_option
@click.option("--dry-run", is_flag=True, help="Print what would change, with diffs; write nothing.")
@click.option(
    "--with-webmail",
    is_flag=True,
    help="Also configure Debian's Roundcube, nginx and PHP-FPM as the webmail (HTTPS with the "
    "mail ports' certificate).",
)
def install(root: Path, dry_run: bool, with_webmail: bool) -> None:
    """Write the data plane into the system's Postfix, Dovecot and systemd configuration,
    backing up every file it replaces or creates (undo with `uninstall`)."""
    from postmeister.dataplane import install as inst

    root = root.resolve()
    try:
        rendered, environment, group = inst.rendered_for_install(
            Settings(), environ=os.environ, executable=_executable(), with_webmail=with_webmail
        )
        paths = inst.target_paths(rendered)
        plan = inst.plan(
            rendered,
            inst.read_current(root, paths),
            modes=inst.read_modes(root, paths),
            secret_group=group,
            environment=environment,
        )
    except (UnsupportedDatabaseError, inst.InstallError) as error:
        raise click.ClickException(str(error)) from error
    if dry_run:
        sys.stdout.write(inst.describe(plan))
        if root == Path("/"):
            for missing in inst.missing_accounts(plan.pending):
                click.echo(f"warning: {missing} does not exist: install would refuse", err=True)
        click.echo(f"dry run: {len(plan.pending)} file(s) would change under {root}", err=True)
        return
    if root == Path("/") and os.geteuid() != 0:
        raise click.ClickException(
            "install onto the system needs root (--dry-run does not; --root DIR writes a "
            "staging tree)"
        )
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    try:
        result = inst.apply(root, plan)
    except (inst.InstallError, OSError) as error:
        raise click.ClickException(str(error)) from error
    if result.backup is None:
        click.echo(f"nothing to do: all {len(plan.changes)} files are up to date", err=True)
        return
    for path in result.written:
        click.echo(f"wrote {path}", err=True)
    click.echo(f"backup of the replaced files: {result.backup}", err=True)
    if result.owners_recorded:
        click.echo(
            "owners not set (staging root or not root), wanted: "
            + "; ".join(result.owners_recorded),
            err=True,
        )
    if with_webmail:
        click.echo("webmail: then, on the server:", err=True)
        for step in inst.webmail_next_steps():
            click.echo(f"  {step}", err=True)
    units = inst.unit_names(plan)
    if inst.systemd_running(root):
        try:
            inst.systemctl("daemon-reload")
            inst.systemctl("enable", *units)
        except inst.InstallError as error:
            raise click.ClickException(str(error)) from error
        click.echo(
            f"enabled {' '.join(units)} (start them, then reload postfix, dovecot and rspamd)",
            err=True,
        )
    else:
        click.echo(
            "systemd is not the running init here (or --root is a staging tree): units not "
            f"enabled; on the server run `systemctl daemon-reload && systemctl enable --now "
            f"{' '.join(units)}`",
            err=True,
        )


@dataplane.command()
@_root_option
@click.option("--force", is_flag=True, help="Restore even files edited after the install.")
def uninstall(root: Path, force: bool) -> None:
    """Restore the files of the newest `install` byte for byte; remove the ones it created."""
    from postmeister.dataplane import install as inst

    root = root.resolve()
    try:
        backup, manifest = inst.newest_backup(root)
        units = [
            Path(entry["path"]).name
            for entry in manifest["files"]
            if entry["path"].startswith(f"{inst.SYSTEMD_DIR}/")
            and entry["sha256_before"] == "absent"
        ]
        if (
            inst.systemd_running(root)
            and units
            and (force or not inst.edited_since_install(root, manifest))
        ):
            inst.systemctl("disable", "--now", *units)
        result = inst.uninstall(root, force=force)
        if inst.systemd_running(root):
            inst.systemctl("daemon-reload")
    except (inst.InstallError, OSError) as error:
        raise click.ClickException(str(error)) from error
    for path in result.restored:
        click.echo(f"restored {path}", err=True)
    for path in result.removed:
        click.echo(f"removed {path}", err=True)
    click.echo(f"restored from {backup} (marked restored)", err=True)


def _rendered_config(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        required=True,
        help=f"The rendered {what}.",
    )


@dataplane.command()
@_rendered_config("milter.json")
def milter(config_file: Path) -> None:
    """Run the sender milter (header From check for the submission service)."""
    from postmeister.dataplane.milter.__main__ import main

    main(["--config", str(config_file)])


@dataplane.command()
@_rendered_config("authpolicy.json")
def authpolicy(config_file: Path) -> None:
    """Run the auth policy service (brute-force limits per client address and account)
    that Dovecot asks before and after every password check."""
    from postmeister.dataplane.authpolicy import main

    main(["--config", str(config_file)])


# --- reload (certificate renewal) -------------------------------------------------------------


@dataplane.command(name="reload")
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A stack started with `up --dir DIR` (default: the installed system's daemons).",
)
def reload_command(root: Path | None) -> None:
    """Make Postfix and Dovecot read their configuration and certificates again, without a
    restart (certbot: --deploy-hook "postmeister dataplane reload")."""
    try:
        reloaded = stack.reload(root)
    except stack.StackError as error:
        raise click.ClickException(str(error)) from error
    for name in reloaded:
        click.echo(f"reloaded {name}", err=True)


if __name__ == "__main__":
    dataplane()
