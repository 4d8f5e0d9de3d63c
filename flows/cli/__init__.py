"""``trade-archive``: the archivist's and admin's command line. Each command parses
its arguments, makes one call into the library (or starts one flow) and prints; the
one error handler below maps the exception tree (archive.errors) to exit codes.

The commands live by group: ``ingest`` (ingest, serve: the flows), ``records``
(export, show, file, report, audit, config), ``preservation`` (verify, reindex,
transfer), ``authenticity`` (keys, sign, check, handover) and ``review`` (accept and
the review group)."""

from __future__ import annotations

import errno
import os
import sys
from typing import NoReturn

import click

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # archives often sit offline

from archive.errors import ExitCode, TradeArchiveError  # noqa: E402 - after the environment it reads
from archive.storage.store import ENV_HOME, Archive, resolve_root  # noqa: E402

archive_option = click.option(
    "--archive", "archive_dir", type=click.Path(file_okay=False), default=None,
    help=f"Archive folder (default: ${ENV_HOME}, else ./archive-data).",
)  # fmt: skip
progress_option = click.option(
    "--progress/--no-progress", "show_progress", default=None,
    help="Live progress bar on stderr (default: on when stderr is a terminal).",
)  # fmt: skip


def open_archive(archive_dir: str | None) -> Archive:
    """The archive a command's --archive names (else $TRADE_ARCHIVE_HOME, ./archive-data)."""
    return Archive.open(resolve_root(archive_dir))


class _Commands(click.Group):
    """The group of every command, and the one place a library error becomes its
    message and exit code (the commands themselves catch nothing)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except TradeArchiveError as error:
            fail(error)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trade-archive")
def cli() -> None:
    """Digitise paper trading archives: scans in, a verified, searchable archive out.

    Settings come from trade-archive.toml (see `trade-archive config`),
    TRADE_ARCHIVE_* environment variables and the options below.

    \b
    Typical day:
      trade-archive ingest scans/ --manifest scans/manifest.csv --archive /srv/archive
      trade-archive verify --archive /srv/archive
      trade-search 中标通知书 --archive /srv/archive
    """
    from archive.config import export_to_environment, load_config

    export_to_environment(load_config())


def main() -> None:
    """The ``trade-archive`` command: click's, with stable exit codes where click has none.
    Every error of the library ends here: its message and its exit code; Ctrl-C is 130
    (as for ingest); a disk or permission failure is a message with exit 5, not a traceback."""
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:  # Ctrl-C (or end of input at a prompt)
        click.echo("stopped; run the same command again to finish", err=True)
        sys.exit(int(ExitCode.interrupted))
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except OSError as error:
        click.echo(f"error: {_os_error(error)}", err=True)
        sys.exit(int(ExitCode.archive_error))
    sys.exit(code if isinstance(code, int) else 0)


def fail(error: TradeArchiveError) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    sys.exit(int(error.exit_code))


def _os_error(error: OSError) -> str:
    hint = {
        errno.ENOSPC: "the disk is full: free space and run the command again",
        errno.EDQUOT: "the disk quota is used up: free space and run the command again",
        errno.EROFS: "the file system is read-only: run it on a writable copy of the archive",
        errno.EACCES: "permission denied: run it as the archive's owner, or ask an admin",
        errno.EPERM: "not permitted: run it as the archive's owner, or ask an admin",
    }.get(error.errno or 0, "a disk or network problem")
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where}: {hint}"


# The command groups register themselves on ``cli`` when imported.
from flows.cli import authenticity, ingest, preservation, records, review  # noqa: E402, F401

__all__ = ["cli", "main"]
