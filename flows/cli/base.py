"""The command group every command registers on, the options they share, and the one
error handler that maps the exception tree (archive.errors) to exit codes."""

import errno
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # archives often sit offline

from archive.config import export_to_environment, load_config  # noqa: E402 - after the environment it reads
from archive.errors import ExitCode, TradeArchiveError, explain_os_error  # noqa: E402
from archive.storage.store import ENV_HOME, Archive, resolve_root  # noqa: E402

archive_option = click.option("--archive", "archive_dir", type=click.Path(file_okay=False), default=None,
                              help=f"Archive folder (default: ${ENV_HOME}, else ./archive-data).")  # fmt: skip
progress_option = click.option("--progress/--no-progress", "show_progress", default=None,
                               help="Live progress bar on stderr (default: on when stderr is a terminal).")  # fmt: skip
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
config_option = click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Settings file (TOML).")


def echo_json(value: object) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def open_archive(archive_dir: str | None) -> Archive:
    """The archive a command's --archive names (else $TRADE_ARCHIVE_HOME, ./archive-data)."""
    return Archive.open(resolve_root(archive_dir))


class _WithExamples:
    """A command with its examples (``example=``: one line or a list), printed after its
    help as written: click rewraps help text, and an example is there to be copied."""

    def __init__(self, *args: Any, example: str | Sequence[str] = (), **kwargs: Any) -> None:
        self.examples = [example] if isinstance(example, str) else list(example)
        super().__init__(*args, **kwargs)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)  # type: ignore[misc]
        if self.examples:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text("Examples:" if len(self.examples) > 1 else "Example:")
                with formatter.indentation():
                    formatter.write("".join(f"{'':{formatter.current_indent}}{line}\n" for line in self.examples))


class _Command(_WithExamples, click.Command):
    pass


class _Commands(_WithExamples, click.Group):
    """The group of every command, and the one place an error of the library becomes its
    message and exit code (a disk or permission failure: exit 5, not a traceback). A
    command whose outcome is not a success returns its ExitCode (not accepted, ...)."""

    command_class = _Command
    group_class = type  # the subgroups (review, keys, disposal) are such groups too

    def invoke(self, ctx: click.Context) -> object:
        try:
            outcome = super().invoke(ctx)
        except TradeArchiveError as error:
            _fail(str(error), error.exit_code)
        except OSError as error:
            if error.errno == errno.EPIPE:  # output piped into `head`: click ends quietly, as it should
                raise
            _fail(explain_os_error(error), ExitCode.archive_error)
        if isinstance(outcome, ExitCode) and outcome:
            ctx.exit(int(outcome))
        return outcome


def _fail(message: str, code: ExitCode) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(int(code))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trade-archive")
def cli() -> None:
    """Digitise paper trading archives: scans in, a verified, searchable archive out.
    Settings come from trade-archive.toml (`trade-archive config` shows them),
    TRADE_ARCHIVE_* environment variables and the options below.

    \b
    Typical day:
      trade-archive ingest scans/ --manifest scans/manifest.csv --archive /srv/archive
      trade-archive verify --archive /srv/archive
      trade-search 中标通知书 --archive /srv/archive"""
    export_to_environment(load_config())


def main() -> None:
    """The ``trade-archive`` command: click's, with stable exit codes where click has none
    (Ctrl-C is 130, as for ingest)."""
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:  # Ctrl-C (or end of input at a prompt)
        click.echo("stopped; run the same command again to finish", err=True)
        sys.exit(int(ExitCode.interrupted))
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
