"""The audit trail of use (全过程可查可溯): every search, ``show`` and export is
an event in the archive's hash-chained log: who, when, what, how many results.
Use is logged before results are shown; if it cannot be logged, nothing is shown."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from datetime import datetime, timezone

from archive.config import load_config
from archive.errors import ArchiveError, BadArgument
from archive.storage.access import os_user, visible_levels
from archive.storage.events import read_events
from archive.storage.store import Archive

USE = "use"  # event type; ``action`` says search, show or export


def user_levels(archive: Archive) -> tuple[str, tuple[str, ...]]:
    """(OS user, the access levels that user may see)."""
    return os_user(), visible_levels(load_config().roles, archive.root)


def record_use(archive: Archive, action: str, results: int, **detail: object) -> None:
    try:
        archive.log(USE, action=action, user=os_user(), results=results, **detail)
    except OSError as error:
        fix = "free space on its disk" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "write access to the log"
        raise ArchiveError(
            f"cannot record this {action} in the audit log {archive.events_path} ({error}); "
            f"use is only allowed when it can be traced: ask an admin for {fix}"
        ) from error


def use_events(archive: Archive, user: str | None = None, action: str | None = None,
               since: str | None = None) -> Iterator[dict]:  # fmt: skip
    """The use events, only ``user``'s, of ``action`` and from ``since`` (an ISO date or
    time, local unless it says its zone) where given."""
    since = _utc(since) if since else None
    for event in read_events(archive.events_path):
        if event.get("type") != USE:
            continue
        if (user and event.get("user") != user) or (action and event.get("action") != action):
            continue
        if since and event.get("time", "") < since:
            continue
        yield event


def use_line(event: dict) -> str:
    """One use event as ``audit`` prints it: when, who, what, on what, how many results."""
    what = event.get("query") or event.get("document") or event.get("format") or ""
    return f"{event['time']}  {event['user']:<12} {event['action']:<7} {what}  -> {event['results']} result(s)"


def _utc(value: str) -> str:
    """An ISO date or time as the event log writes it (UTC)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadArgument("--since", f"{value!r} is not an ISO date or time, e.g. 2023-12-01") from None
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")  # a time without a zone is local
