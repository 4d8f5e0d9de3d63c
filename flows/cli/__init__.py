"""``trade-archive``: the archivist's and admin's command line, one file per command
group. Each command parses its arguments, makes one call into the library (or starts
one flow) and prints; ``base`` holds the group and the one error handler."""

from flows.cli import ingest, preservation, records, review  # noqa: F401
from flows.cli.base import cli, main

__all__ = ["cli", "main"]
