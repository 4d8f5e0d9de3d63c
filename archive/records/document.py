"""The document record: what a package's ``data/document.json`` holds, as one typed
object with one load and one save. Every reader of document.json goes through here.

The file's format does not change: fields are written in the order they always were,
a key this version does not know (written by a newer one) is kept as it is, and a key
an older archive lacks takes its default."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from archive.storage.fixity import atomic_write_json
from archive.storage.store import read_archived

FILE = "document.json"  # in the package's data/ folder


@dataclass
class DocumentRecord:
    document: str  # the id: the first 16 hex of the source's SHA-256
    source: str = ""  # the original file name
    source_path: str | None = None  # where the file was ingested from
    source_sha256: str = ""
    pages: int = 0
    doc_type: str = "other"
    metadata: dict[str, Any] = field(default_factory=dict)  # the contract's fields (docs/contracts.md)
    provenance: dict[str, str] = field(default_factory=dict)  # field -> where its value came from
    extracted: dict[str, Any] = field(default_factory=dict)  # what the text said, kept where the manifest won
    bidders: list[dict[str, Any]] | None = None  # name and price per bidder, from bid-opening tables
    conflicts: list[str] = field(default_factory=list)  # fields where manifest and text disagree
    qc_flags: list[str] = field(default_factory=list)
    manifest_row: dict[str, str] | None = None
    access_pdf: dict[str, Any] = field(default_factory=dict)  # {"pdfa": flavour or None, "problems": [...]}
    process: dict[str, Any] = field(default_factory=dict)  # pipeline and engine versions, batch, operator, times
    page_images: list[dict[str, Any]] = field(default_factory=list)  # per page: file, size, dpi, colour mode, ...
    description: dict[str, Any] | None = None  # 题名, 责任者, 日期, 文号 (records.arrangement; None before)
    arrangement: dict[str, Any] | None = None  # 全宗, 年度, 保管期限, 件号, 档号 (records.arrangement.Arrangement)
    other: dict[str, Any] = field(default_factory=dict, repr=False)  # keys a newer version wrote: kept on save
    package: Path | None = field(default=None, repr=False, compare=False)  # where it was loaded from; not saved

    _NOT_SAVED: ClassVar[tuple[str, ...]] = ("other", "package")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DocumentRecord:
        known = {f.name for f in dataclasses.fields(cls)} - set(cls._NOT_SAVED)
        return cls(**{k: v for k, v in data.items() if k in known},
                   other={k: v for k, v in data.items() if k not in known})  # fmt: skip

    @classmethod
    def load(cls, package: Path) -> DocumentRecord:
        """The record of the package (its folder), or an ArchiveError naming a damaged file."""
        record = cls.from_json(read_archived(package / "data" / FILE))
        record.package = package
        return record

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self._NOT_SAVED}
        for name in ("source_path", "bidders", "description", "arrangement"):
            if data[name] is None:
                data.pop(name)  # a record without it stays without it (the file as an older version wrote it)
        return data | self.other

    def save(self, data_folder: Path) -> Path:
        """Write it atomically into ``data_folder`` (a package's data/, or staging)."""
        path = data_folder / FILE
        atomic_write_json(path, self.to_json())
        return path

    def page_image(self, page: int) -> dict[str, Any]:
        """What was recorded of a page's master image ({} where nothing was)."""
        return next((image for image in self.page_images if image.get("page") == page), {})
