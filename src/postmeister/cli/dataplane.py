"""`postmeister dataplane`: render the Postfix/Dovecot configuration, run a private stack."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from postmeister.config import Settings
from postmeister.dataplane import stack
from postmeister.dataplane.render import render_site
from postmeister.dataplane.render.model import UnsupportedDatabaseError


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


if __name__ == "__main__":
    dataplane()
