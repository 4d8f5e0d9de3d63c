"""One rooted exception tree. Every error carries the exit code the CLI returns
and a message that tells a person what to do next (OCRmyPDF's pattern)."""

from __future__ import annotations

import errno
from enum import IntEnum


class ExitCode(IntEnum):
    """Stable exit codes, documented in the README. Never renumber."""

    ok = 0
    bad_arguments = 2  # click's own code for usage errors
    input_file = 3  # what the command names does not exist: SRC, a document, a batch report, a transaction
    verify_failed = 4  # fixity or event-log check found a problem
    archive_error = 5  # the archive itself is unusable (missing, unwritable, ...)
    archive_busy = 7  # another writer holds the archive; try again later
    not_accepted = 8  # acceptance checks left open flags
    query_error = 6  # malformed search query
    other_error = 15
    interrupted = 130  # Ctrl-C or SIGTERM: stopped early; run the same command again to finish (128 + SIGINT)


class TradeArchiveError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code: ExitCode = ExitCode.other_error


class InputRejected(TradeArchiveError):
    """A source file that cannot be archived as it is: it goes to quarantine.

    ``reason`` is a short machine code (``not_pdf``, ``encrypted``, ...);
    the message says in words what is wrong and what to do.
    """

    exit_code = ExitCode.input_file

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):  # noqa: ANN204 - raised in worker processes too: it must survive pickling back
        return (type(self), (self.reason, str(self)))


class InvalidValue(TradeArchiveError):
    """A value given on the command line that the archive cannot take as it is."""

    exit_code = ExitCode.bad_arguments


class BadArgument(InvalidValue):
    """A command's argument that names something unusable (a folder without PDFs, a
    manifest that cannot be read); ``argument`` says which, as the command line names it."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


class DamagedBag(TradeArchiveError):
    """A package that fails its BagIt validation where a command needs it whole (transfer)."""

    exit_code = ExitCode.verify_failed


class NotFound(TradeArchiveError):
    """The document, batch report or transaction a command names is not in the archive."""

    exit_code = ExitCode.input_file


class ArchiveError(TradeArchiveError):
    """The archive folder is missing, malformed or cannot be written."""

    exit_code = ExitCode.archive_error


class ArchiveBusy(ArchiveError):
    """Another ingest or reindex is writing to the archive right now."""

    exit_code = ExitCode.archive_busy


class QueryError(TradeArchiveError):
    """A search query the parser cannot understand."""

    exit_code = ExitCode.query_error


class BatchInterrupted(TradeArchiveError):
    """The batch was asked to stop (Ctrl-C, SIGTERM): a document not finished is
    not archived (nothing half-written stays) and is done by the next run."""

    exit_code = ExitCode.interrupted


def explain_os_error(error: OSError) -> str:
    """A disk or permission failure as its user can act on it (what, where, what to do)."""
    hint = {
        errno.ENOSPC: "the disk is full: free space and run the command again",
        errno.EDQUOT: "the disk quota is used up: free space and run the command again",
        errno.EROFS: "the file system is read-only: run it on a writable copy of the archive",
        errno.EACCES: "permission denied: run it as the archive's owner, or ask an admin",
        errno.EPERM: "not permitted: run it as the archive's owner, or ask an admin",
    }.get(error.errno or 0, "a disk or network problem")
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where}: {hint}"
