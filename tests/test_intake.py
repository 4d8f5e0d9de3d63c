import pytest
from pypdf import PdfReader, PdfWriter

from archive.capture.intake import open_source_pdf
from archive.errors import InputRejected


def _reason(path):
    with pytest.raises(InputRejected) as caught:
        open_source_pdf(path)
    assert str(caught.value)  # every rejection says something a person can act on
    return caught.value.reason


def test_good_scan_opens(resources):
    source, _reader = open_source_pdf(resources / "award-notice.pdf")
    assert source.page_count == 2


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    assert _reason(path) == "empty_file"


def test_jpeg_renamed_pdf_is_rejected(tmp_path):
    path = tmp_path / "photo.pdf"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    assert _reason(path) == "not_pdf"


def test_truncated_pdf_is_rejected(tmp_path, resources):
    data = (resources / "award-notice.pdf").read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[:400])
    assert _reason(path) in {"unreadable_pdf", "no_pages"}


def test_encrypted_pdf_is_rejected(tmp_path, resources):
    writer = PdfWriter(clone_from=PdfReader(resources / "notice-upside-down.pdf"))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    path = tmp_path / "locked.pdf"
    with open(path, "wb") as handle:
        writer.write(handle)
    assert _reason(path) == "encrypted"
