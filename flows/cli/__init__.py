"""``trade-archive``: the archivist's and admin's command line. Each command parses
its arguments, makes one call into the library (or starts one flow) and prints;
``base`` holds the group and the one error handler that maps the library's
exception tree to exit codes.

The commands live by group: ``ingest`` (ingest, serve: the flows), ``cluster``
(deploy, cluster-certs: many machines), ``records`` (export, show, file, report,
audit, config), ``arrangement`` (catalogue, paper, disposal), ``authenticity`` (keys,
sign, check, handover), ``preservation`` (verify, reindex, transfer) and ``review``
(accept and the review group; ``review serve`` starts the review page, ``flows.web``)."""

from flows.cli import arrangement, authenticity, cluster, ingest, preservation, records, review  # noqa: F401
from flows.cli.base import cli, main

__all__ = ["cli", "main"]
