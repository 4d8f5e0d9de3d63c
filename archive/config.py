"""One configuration: a TOML file, every setting also an environment variable,
and a record of where each effective value came from (``trade-archive config``).

Search order for the file: ``--config FILE``, ``$TRADE_ARCHIVE_CONFIG``,
``./trade-archive.toml``, ``~/.config/trade-archive/config.toml``. Environment
variables (``TRADE_ARCHIVE_<NAME>``, e.g. ``TRADE_ARCHIVE_INBOX``) override
the file; command-line options override both.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import tomllib

from archive.errors import ExitCode, TradeArchiveError

ENV_PREFIX = "TRADE_ARCHIVE_"

# name -> (default, type, what it is)
SETTINGS: dict[str, tuple[Any, type, str]] = {
    "home": ("archive-data", str, "archive folder"),
    "inbox": ("inbox", str, "hot folder: scans dropped here are ingested on schedule"),
    "engine": ("rapidocr", str, "OCR engine: rapidocr or tesseract"),
    "ocr_backend": ("auto", str, "what runs RapidOCR's models: auto, onnxruntime or openvino"),
    "ocr_reread_below": (0.97, float, "OpenVINO on a CPU with bf16 units: lines the bf16 recogniser reads with "
                         "less confidence are read again in 32-bit floats (1: every line in f32, 0: none)"),
    "workers": (0, int, "OCR worker processes (0 = one per core)"),
    "index": ("whoosh", str, "index backend for a new archive: whoosh or tantivy"),
    "low_confidence": (0.80, float, "pages below this OCR confidence are flagged for QC"),
    "page_seconds": (120, int, "time limit for one page before it is given up"),
    "stable_seconds": (30, int, "a file in the inbox must keep its size this long before it is taken"),
    "ingest_cron": ("*/15 * * * *", str, "when the inbox is ingested"),
    "verify_cron": ("0 3 * * 0", str, "when the whole archive is verified (weekly)"),
    "optimize_cron": ("30 2 * * *", str, "when the index is optimised (nightly)"),
    "timezone": ("Asia/Shanghai", str, "time zone of the schedules"),
    "fonds": ("0001", str, "全宗号: the fonds number the archives bureau gave the centre"),
    "archival_code": ("{fonds}-{year}-{retention_code}-{item:04d}", str,
                      "档号 template over {fonds}, {year}, {retention_code} (Y/D30/D10), {retention}, {item}"),
    "signing_key": ("", str, "the centre's PKCS#12 (password in $TRADE_ARCHIVE_SIGNING_PASSWORD); empty: no signing"),
    "tsa_url": ("", str, "RFC 3161 timestamp authority for signatures; empty: no trusted time"),
    "trust_roots": ("", str, "PEM file of the root certificates signatures must chain to (verify, check)"),
    "signature_mark": ("invisible", str, "the access PDF's signature: invisible, or visible (a 签章标识 line)"),
}  # fmt: skip

# Retention periods (DA/T 22-2015) and their codes in the 档号 (DA/T 13-2022).
RETENTION_CODES = {"永久": "Y", "定期30年": "D30", "定期10年": "D10"}
# doc_type -> retention, "default" for every other type; a [retention] table overrides entry by entry.
DEFAULT_RETENTION = {"default": "定期30年", "award_notice": "永久", "contract": "永久"}
# The tables: name -> what it is (each also TRADE_ARCHIVE_<NAME>, written as a TOML inline table).
TABLES = {
    "retention": 'doc_type -> 永久 | 定期30年 | 定期10年 (or Y/D30/D10), "default" for the rest',
    "required_documents": 'transaction type (or "failed", for 流标/废标) -> doc_types it must leave behind',
}


PATH_SETTINGS = ("signing_key", "trust_roots")  # files named in the config


class ConfigError(TradeArchiveError):
    exit_code = ExitCode.bad_arguments


# What each setting may be, checked when it is read: a wrong engine name used to surface
# only as a failed batch, a wrong time zone only when the schedules were served.
CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?#-]+")
CRON_NICKNAMES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))  # minute, hour, day, month, weekday


def _cron_line(value: str) -> bool:
    fields = value.split()
    if value.strip() in CRON_NICKNAMES:
        return True
    if len(fields) != 5 or not all(map(CRON_FIELD.fullmatch, fields)):
        return False
    for text, (low, high) in zip(fields, CRON_RANGES, strict=True):  # "99 99 * * *" is no time of day
        numbers = [int(n) for n in re.findall(r"\d+", text.split("/")[0])]
        step = text.split("/")[1] if "/" in text else "1"
        if any(not low <= n <= high for n in numbers) or not step.isdigit() or int(step) == 0:
            return False  # */0 steps nowhere
    return True


def _check(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be the setting ``name``, or None where it can."""
    choices = {
        "engine": ("rapidocr", "tesseract"),
        "ocr_backend": ("auto", "onnxruntime", "openvino"),
        "index": ("whoosh", "tantivy"),
        "signature_mark": ("invisible", "visible"),
    }.get(name)
    if choices and value not in choices:
        return f"one of: {', '.join(choices)}"
    if name in ("workers", "stable_seconds") and value < 0:
        return "0 or more"
    if name == "page_seconds" and value < 1:
        return "1 or more"
    if name in ("low_confidence", "ocr_reread_below") and not 0 <= value <= 1:
        return "between 0 and 1 (e.g. 0.8)"
    if name.endswith("_cron") and not _cron_line(value):
        return 'a cron line of five fields, e.g. "*/15 * * * *", or @hourly, @daily, @weekly, ...'
    if name == "timezone":
        try:
            ZoneInfo(value)
        except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError, IsADirectoryError ("Asia")
            return 'a time zone name, e.g. "Asia/Shanghai"'
    return None


@dataclass
class Config:
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    roles: dict[str, Any] = field(default_factory=dict)  # access control, from the [roles] table
    retention: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_RETENTION))  # doc_type -> period
    required_documents: dict[str, list[str]] = field(default_factory=dict)  # transaction type -> doc_types
    table_sources: dict[str, str] = field(default_factory=dict)  # the tables' sources (never exported)
    file: Path | None = None

    def path(self, name: str) -> Path | None:
        """A file setting as a path (None where empty); relative in a config file: to that file's folder."""
        if not self.values.get(name):
            return None
        found = Path(self.values[name]).expanduser()
        in_file = self.file is not None and self.sources.get(name, "").startswith("file")
        return found if found.is_absolute() or not in_file else self.file.parent / found

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def candidate_files(explicit: str | None = None) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    found = [Path(os.environ[f"{ENV_PREFIX}CONFIG"])] if os.environ.get(f"{ENV_PREFIX}CONFIG") else []
    return found + [Path("trade-archive.toml"), Path.home() / ".config" / "trade-archive" / "config.toml"]


def load_config(explicit: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    config = Config()
    table: dict[str, Any] = {}
    for path in candidate_files(explicit):
        if path.is_file():
            try:
                table = tomllib.loads(path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as error:
                raise ConfigError(f"{path}: not valid TOML ({error})") from error
            config.file = path
            break
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
    unknown = set(table) - set(SETTINGS) - {"roles", *TABLES}
    if unknown:
        raise ConfigError(f"{config.file}: unknown settings {', '.join(sorted(unknown))}; known: {', '.join(SETTINGS)}")
    config.roles = _checked_roles(table.get("roles", {}), config.file)
    for name, (default, kind, _help) in SETTINGS.items():
        value, source = default, "default"
        if name in table:
            value, source = table[name], f"file {config.file}"
        env = f"{ENV_PREFIX}{name.upper()}"
        if env in os.environ and env not in _EXPORTED:  # set by the user, not from a file by us
            value, source = os.environ[env], f"env {env}"
        if overrides and overrides.get(name) is not None:
            value, source = overrides[name], "command line"
        try:
            if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
                raise TypeError("true/false or a fraction where a number is wanted")
            if kind is str and not isinstance(value, str):
                raise TypeError("a text setting")
            config.values[name] = kind(value)
        except (TypeError, ValueError) as error:
            what = {"int": "whole number", "float": "number", "str": "text in quotes"}.get(kind.__name__, kind.__name__)
            raise ConfigError(f"{name} = {value!r} ({source}) is not a {what}") from error
        if (wanted := _check(name, config.values[name])) is not None:
            raise ConfigError(f"{name} = {value!r} ({source}) cannot be used: {name} is {wanted}")
        config.sources[name] = source
    _check_template(config.values["archival_code"], config.sources["archival_code"])
    retention, config.table_sources["retention"] = _table(table, "retention", config.file)
    config.retention.update(_checked_retention(retention, config.table_sources["retention"]))
    required, config.table_sources["required_documents"] = _table(table, "required_documents", config.file)
    config.required_documents = _checked_required(required, config.table_sources["required_documents"])
    return config


def _table(table: dict[str, Any], name: str, path: Path | None) -> tuple[dict, str]:
    """A table setting and where it came from: ``TRADE_ARCHIVE_<NAME>`` (a TOML inline table,
    e.g. '{contract = "永久"}') over the file's [name] table."""
    value, source = table.get(name, {}), f"file {path}" if name in table else "default"
    env = f"{ENV_PREFIX}{name.upper()}"
    if os.environ.get(env):
        try:
            value, source = tomllib.loads(f"value = {os.environ[env]}")["value"], f"env {env}"
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f'{env} is not a TOML inline table, e.g. {{contract = "永久"}} ({error})') from error
    if not isinstance(value, dict):
        raise ConfigError(f"{name} ({source}) must be a table, e.g. [{name}] then one entry a line")
    return value, source


def _checked_retention(table: dict[str, Any], source: str) -> dict[str, str]:
    by_code = {code: period for period, code in RETENTION_CODES.items()}
    periods = {}
    for doc_type, period in table.items():
        period = by_code.get(str(period).upper(), period) if isinstance(period, str) else period
        if period not in RETENTION_CODES:
            raise ConfigError(f"retention.{doc_type} = {table[doc_type]!r} ({source}) cannot be used: "
                              f"one of {', '.join(RETENTION_CODES)} (or {', '.join(by_code)})")  # fmt: skip
        periods[doc_type] = period
    return periods


def _checked_required(table: dict[str, Any], source: str) -> dict[str, list[str]]:
    for kind, doc_types in table.items():
        if not isinstance(doc_types, list) or not all(isinstance(d, str) and d for d in doc_types):
            raise ConfigError(
                f"required_documents.{kind} = {doc_types!r} ({source}) must be a list of doc_types, "
                'e.g. ["tender_notice", "bid_opening", "evaluation_report", "award_notice", "contract"]'
            )
    return table


def _check_template(template: str, source: str) -> None:
    """The 档号 template formats, and two item numbers give two codes (else codes repeat)."""
    sample = {"fonds": "0001", "year": 2023, "retention": "永久", "retention_code": "Y"}
    try:
        codes = {template.format(**sample, item=item) for item in (1, 2)}
    except (KeyError, IndexError, ValueError) as error:
        raise ConfigError(f"archival_code = {template!r} ({source}) cannot be used: {error!r}; placeholders are "
                          "{fonds}, {year}, {retention}, {retention_code}, {item}, e.g. "
                          '"{fonds}-{year}-{retention_code}-{item:04d}"') from error  # fmt: skip
    if len(codes) < 2:
        raise ConfigError(f"archival_code = {template!r} ({source}) cannot be used: it must contain {{item}}, "
                          "or every document of a group gets the same code")  # fmt: skip


def _checked_roles(roles: Any, path: Path | None) -> dict[str, list[str]]:
    """The [roles] table: each role a list of OS user names (a bare "zhangwei" was read as
    the characters z, h, a, ...: he was silently refused)."""
    if not isinstance(roles, dict):
        raise ConfigError(f'{path}: roles must be a table, e.g. [roles] then restricted = ["zhangwei"]')
    for role, users in roles.items():
        if not isinstance(users, list) or not all(isinstance(user, str) for user in users):
            raise ConfigError(f'{path}: roles.{role} = {users!r} must be a list of OS user names, e.g. ["zhangwei"]')
    return roles


def describe(config: Config) -> str:
    """The effective configuration as TOML, each value with where it came from."""
    lines = [f"# config file: {config.file or 'none found'} (searched: {', '.join(map(str, candidate_files()))})"]
    for name, (_default, _kind, help_text) in SETTINGS.items():
        value = config.values[name]
        rendered = f'"{value}"' if isinstance(value, str) else value
        lines.append(f"{name} = {rendered}  # {config.sources[name]} — {help_text}")
    for name, help_text in TABLES.items():
        lines.append(f"[{name}]  # {config.table_sources.get(name, 'default')} — {help_text}")
        lines += [f'"{key}" = {json.dumps(value, ensure_ascii=False)}' for key, value in getattr(config, name).items()]
    if config.roles:
        lines.append(f"# roles: {', '.join(config.roles)}")
    return "\n".join(lines)


# Variables this process set from a configuration file: a later ``--config FILE`` replaces
# them (a variable the user set still beats any file).
_EXPORTED: set[str] = set()


def export_to_environment(config: Config) -> None:
    """Make file settings visible as TRADE_ARCHIVE_* variables, so OCR worker
    processes and modules that read the environment see the same values."""
    for name, source in config.sources.items():
        key = f"{ENV_PREFIX}{name.upper()}"
        if source.startswith("file") and (key not in os.environ or key in _EXPORTED):
            path = config.path(name) if name in PATH_SETTINGS else None  # relative to the file, not the reader
            os.environ[key] = str(path.resolve() if path else config.values[name])
            _EXPORTED.add(key)
        elif key in _EXPORTED and not source.startswith("file"):  # an earlier file's, which this one drops
            os.environ.pop(key, None)
            _EXPORTED.discard(key)
