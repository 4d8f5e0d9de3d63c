"""Prefect orchestration: thin flows and tasks over ``archive`` and ``index``, the
deployments and the server, the command line that starts them (``flows.cli``), and
the local review web application that ``trade-archive review serve`` starts
(``flows.web``: pages over the library's review calls)."""

import os

# The library logs with the standard logging module; inside a flow run, Prefect sends
# those records to the run's log (the UI) as well as to the console.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "archive")
# Outside a flow run (a progress warning after the flow ended) they go to the console only.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
