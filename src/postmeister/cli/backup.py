"""`postmeister backup` and `postmeister restore` (see `postmeister.ops.backup`)."""

from __future__ import annotations

from pathlib import Path

import click

from postmeister.cli.common import print_json, settings_for
from postmeister.ops.backup import BackupError, create_backup, restore_backup


def _progress(message: str) -> None:
    click.echo(message, err=True)


_mail_root = click.option(
    "--mail-root",
    type=click.Path(file_okay=False, path_type=Path),
    help="The mail store (default: POSTMEISTER_DATAPLANE__MAIL_ROOT).",
)
_data_dir = click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Data folder (POSTMEISTER_DATA_DIR)."
)


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="A new or empty directory for the backup.",
)
@click.option("--mail-store", is_flag=True, help="Also copy the mail store (the Maildirs).")
@_mail_root
@_data_dir
def backup(out: Path, mail_store: bool, mail_root: Path | None, data_dir: Path | None) -> None:
    """Back up the database (and the mail store) while everything runs; prints the manifest.

    Progress goes to stderr, the manifest (versions, schema revision, checksums) to stdout."""
    settings = settings_for(data_dir)
    root = (mail_root or settings.dataplane.mail_root) if mail_store else None
    try:
        manifest = create_backup(settings, out, mail_root=root, progress=_progress)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    print_json(manifest)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@_mail_root
@click.option("--no-mail-store", is_flag=True, help="Restore the database only.")
@_data_dir
def restore(
    directory: Path, mail_root: Path | None, no_mail_store: bool, data_dir: Path | None
) -> None:
    """Restore a backup into an empty data folder or database (and an empty mail store).

    Refuses a backup whose files do not match their checksums, one from a newer schema, and
    any target that is not empty. Migrates an older schema to this version's."""
    settings = settings_for(data_dir)
    root = None if no_mail_store else (mail_root or settings.dataplane.mail_root)
    try:
        manifest = restore_backup(settings, directory, mail_root=root, progress=_progress)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    print_json({"restored": str(directory), "database": manifest["database"]})
