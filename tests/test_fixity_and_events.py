import hashlib
import json
import os

import pytest

from archive.storage.events import append_event, check_chain, read_events
from archive.storage.fixity import atomic_write_bytes, copies_of_earlier, sha256_file


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "f.bin"
    data = b"trade-archive" * 100_000
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "x.json"
    atomic_write_bytes(target, b"{}")
    atomic_write_bytes(target, b'{"a": 1}')
    assert target.read_bytes() == b'{"a": 1}'
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_event_chain_holds_and_detects_edits(tmp_path):
    log = tmp_path / "events.jsonl"
    for i in range(4):
        append_event(log, "ingestion", document=f"d{i}")
    assert check_chain(log) == []
    assert [e["document"] for e in read_events(log)] == ["d0", "d1", "d2", "d3"]

    lines = log.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["document"] = "forged"
    lines[1] = json.dumps(edited, ensure_ascii=False, sort_keys=True)
    log.write_text("\n".join(lines) + "\n")
    assert [b.line for b in check_chain(log)] == [3]


def test_event_chain_detects_deleted_line(tmp_path):
    log = tmp_path / "events.jsonl"
    for i in range(3):
        append_event(log, "ingestion", document=f"d{i}")
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert [b.line for b in check_chain(log)] == [2]


def test_copies_of_earlier_files_are_found_by_bytes_not_names(tmp_path):
    contents = [b"scan one", b"scan one", b"scan two", b"scan one", b"longer scan", b"scan two"]
    paths = []
    for number, data in enumerate(contents):
        paths.append(tmp_path / f"{number}.pdf")
        paths[-1].write_bytes(data)
    paths.append(tmp_path / "missing.pdf")  # unreadable: left to its own ingest
    assert copies_of_earlier(paths) == {1: 0, 3: 0, 5: 2}


def test_a_full_disk_during_an_append_leaves_the_log_as_it_was(tmp_path, monkeypatch):
    """A write cut short (ENOSPC after half the line) is cut off again: later appends chain on."""
    import errno

    from archive.storage import events

    log = tmp_path / "events.jsonl"
    append_event(log, "ingestion", document="a")
    before = log.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(events.os, "write", half_then_full)
    with pytest.raises(OSError):
        append_event(log, "search", query="开标")
    monkeypatch.setattr(events.os, "write", real_write)
    assert log.read_bytes() == before
    append_event(log, "search", query="开标")
    assert not list(check_chain(log)) and len(list(read_events(log))) == 2
