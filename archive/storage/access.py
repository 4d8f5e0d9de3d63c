"""Who may see what. Each document has an access level; roles in the
configuration map OS users to the levels they may see. Search, ``show`` and
export hide a restricted document entirely from a user without the role:
no hit, no snippet, no count, the same "no such document" as for a missing one.

    [roles]                         # trade-archive.toml
    restricted = ["zhangwei", "liuyang"]   # may see restricted documents
    admin = ["root"]                       # may see everything

Procurement rules keep losing bidders' bid files and evaluation reports out
of sight, so those document types are restricted by default; a manifest column
``access`` (open/restricted) or an archivist's correction sets any document's level.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

OPEN, RESTRICTED = "open", "restricted"
LEVELS = (OPEN, RESTRICTED)
RESTRICTED_DOC_TYPES = ("bid", "evaluation_report")


def os_user() -> str:
    """The real OS user (not $USER, which anyone can set)."""
    return pwd.getpwuid(os.getuid()).pw_name


def access_level(doc_type: str | None, manifest_row: dict | None, corrected: dict | None = None) -> str:
    for source in (corrected or {}, manifest_row or {}):
        level = str(source.get("access") or "").strip().lower()
        if level in LEVELS:
            return level
    return RESTRICTED if doc_type in RESTRICTED_DOC_TYPES else OPEN


def visible_levels(roles: dict, archive_root: Path, user: str | None = None) -> tuple[str, ...]:
    """The levels ``user`` may see. Without any roles configured, the archive's
    owner and root see everything, others only open documents."""
    user = user or os_user()
    if roles:
        allowed = set(roles.get("restricted", [])) | set(roles.get("admin", []))
    else:
        allowed = {"root", pwd.getpwuid(archive_root.stat().st_uid).pw_name}
    return LEVELS if user in allowed else (OPEN,)
