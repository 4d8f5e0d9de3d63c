"""The centre's signature on what it keeps (档案法实施条例 Art. 32, 电子签名法 Art. 5-6):
each access PDF signed as a PDF signature standard validators read (PAdES, with
pyHanko), and each package's ``tagmanifest-sha256.txt`` signed by a detached CMS
signature beside it (``tagmanifest-sha256.txt.p7s``), which covers the whole bag
through its manifests; both timestamped by an RFC 3161 authority when ``tsa_url`` is
set. The signing algorithm is the certificate's (RSA, ECDSA), not chosen here.

Checking them is ``archive.preservation.signatures``'s (for verify and the four-property check).
Without a ``signing_key`` nothing is signed and a missing signature is no problem.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from archive.config import ENV_PREFIX, Config, load_config
from archive.errors import DamagedBag, ExitCode, NotFound, TradeArchiveError
from archive.storage.events import logged_tag_manifests, read_events
from archive.storage.fixity import sha256_file
from archive.storage.package import rebag
from archive.storage.store import Archive

# pyHanko imports cryptography's DSA support, which warns on stderr at every command that
# checks a signature; the archive never uses DSA keys, and an archivist cannot act on it.
warnings.filterwarnings("ignore", message="DSA is deprecated")

PASSWORD_ENV = "TRADE_ARCHIVE_SIGNING_PASSWORD"
SIGNATURE_FILE = "tagmanifest-sha256.txt.p7s"  # beside the tag manifest it signs; in no manifest itself
FIELD_NAME = "CentreSignature"
ACCESS_PDF = "data/access.pdf"


class SigningError(TradeArchiveError):
    """The signing key, its password or the timestamp authority cannot be used."""

    exit_code = ExitCode.bad_arguments


@dataclass(frozen=True)
class SigningSettings:
    key: Path | None = None  # the centre's PKCS#12
    tsa_url: str | None = None  # RFC 3161 timestamp authority
    trust_roots: Path | None = None  # PEM file of the certificates signatures must chain to
    visible: bool = False  # a visible 签章标识 line on the first page

    @classmethod
    def from_config(cls, config: Config) -> SigningSettings:
        def value(name: str) -> str | None:
            # ``serve --config FILE`` exports FILE's settings; a later load_config() finds no file and ignores them
            exported = os.environ.get(f"{ENV_PREFIX}{name.upper()}")
            if config.file is None and config.sources.get(name) == "default" and exported:
                return exported
            return config.values.get(name) or None

        key, roots = config.path("signing_key"), config.path("trust_roots")
        return cls(key or _path(value("signing_key")), value("tsa_url"), roots or _path(value("trust_roots")),
                   value("signature_mark") == "visible")  # fmt: skip

    @property
    def enabled(self) -> bool:
        return self.key is not None


def _path(text: str | None) -> Path | None:
    return Path(text).expanduser() if text else None


def load_pkcs12(path: Path, password: bytes | None):  # -> pyhanko SimpleSigner
    from pyhanko.sign.signers import SimpleSigner

    try:
        with quiet_pyhanko():  # it logs a traceback for a wrong password
            signer = SimpleSigner.load_pkcs12(str(path), passphrase=password)
    except Exception as error:  # noqa: BLE001 - pyHanko raises assorted errors for a bad file or password
        signer = None
        why = f"{type(error).__name__}: {error}"
    else:
        why = "wrong password, or no key in it"
    if signer is None:
        raise SigningError(f"signing_key {path} cannot be opened ({why}); a password goes in ${PASSWORD_ENV}")
    return signer


@contextlib.contextmanager
def quiet_pyhanko() -> Iterator[None]:
    """pyHanko logs a traceback for each failed validation or key load; the findings and
    errors here say it once, in words."""
    loggers = [logging.getLogger(name) for name in ("pyhanko", "pyhanko_certvalidator")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@functools.lru_cache(maxsize=4)
def load_signer(settings: SigningSettings):
    if not settings.key or not settings.key.is_file():
        raise SigningError(f"signing_key {settings.key} does not exist (`keys init --demo DIR` makes demo keys)")
    password = os.environ.get(PASSWORD_ENV)
    return load_pkcs12(settings.key, password.encode() if password else None)


@functools.lru_cache(maxsize=4)  # one client: pyHanko caches its size-estimating dummy token per client
def _timestamper(settings: SigningSettings):
    if not settings.tsa_url:
        return None
    from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper

    return RequestsHTTPTimeStamper(settings.tsa_url, timeout=30)


def signer_name(settings: SigningSettings) -> str:
    return load_signer(settings).signing_cert.subject.human_friendly


def sign_pdf(path: Path, settings: SigningSettings) -> None:
    """Sign ``path`` in place (through a temporary file and a rename) as the centre."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason="档案法实施条例第三十二条: 数字复制件 (digital copy certified by the custodian)",
        location="trade-archive",
    )
    partial = path.with_name(f".{path.name}.signing")
    try:
        with open(path, "rb") as source, open(partial, "wb") as out:
            writer = IncrementalPdfFileWriter(source, strict=False)
            pdf_signer = signers.PdfSigner(
                meta, load_signer(settings), timestamper=_timestamper(settings),
                new_field_spec=_field_spec(settings), stamp_style=_stamp_style(settings),
            )  # fmt: skip
            with quiet_pyhanko():  # a failure is raised below, in words
                run_async(pdf_signer.async_sign_pdf(writer, output=out))
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, (OSError, SigningError, KeyboardInterrupt)):
            raise
        raise SigningError(f"{path} could not be signed ({type(error).__name__}: {error})") from error


STAMP_TEXT = "本件为电子档案数字复制件，与原件具有同等效力。签章: %(signer)s  时间: %(ts)s"
CJK_FONTS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian/Ubuntu fonts-noto-cjk
             "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc")  # Fedora  # fmt: skip


def _field_spec(settings: SigningSettings):
    from pyhanko.sign import fields

    box = (36, 10, 560, 26) if settings.visible else None  # the bottom margin of the first page
    return fields.SigFieldSpec(FIELD_NAME, on_page=0, box=box)


def _stamp_style(settings: SigningSettings):
    """The visible 签章标识: a line of text in an embedded font (PDF/A takes no other), or None."""
    if not settings.visible:
        return None
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.stamp import TextStampStyle

    font = GlyphAccumulatorFactory(_stamp_font(load_signer(settings).subject_name or ""), font_size=7)
    return TextStampStyle(stamp_text=STAMP_TEXT, border_width=0, text_box_style=TextBoxStyle(font=font))


@functools.lru_cache(maxsize=4)
def _stamp_font(signer: str) -> str:
    """Noto Sans CJK SC cut down to the stamp's characters, once per process: embedding the
    whole 16 MB font took pyHanko 4 s per signature, the subset well under one."""
    import string
    import tempfile

    from fontTools import subset
    from fontTools.ttLib import TTCollection

    path = next((Path(p) for p in CJK_FONTS if Path(p).is_file()), None)
    if path is None:
        raise SigningError('signature_mark = "visible" needs a CJK font (Debian: apt-get install fonts-noto-cjk)')
    font = next(f for f in TTCollection(str(path), lazy=True).fonts if f["name"].getDebugName(1).endswith(" SC"))
    options = subset.Options()
    options.notdef_outline = True
    cutter = subset.Subsetter(options)
    cutter.populate(text=STAMP_TEXT + signer + string.printable)
    cutter.subset(font)
    out = Path(tempfile.mkdtemp(prefix="trade-archive-stamp-")) / "stamp.otf"
    font.save(str(out))
    return str(out)


def sign_detached(path: Path, settings: SigningSettings) -> Path:
    """A detached CMS signature (with a signature timestamp where a TSA is set) of ``path``'s bytes,
    written to ``<path>.p7s``."""
    from asn1crypto import cms

    data = path.read_bytes()
    content = cms.ContentInfo({"content_type": "data", "content": data})
    try:
        with quiet_pyhanko():
            signed = run_async(load_signer(settings).async_sign_general_data(content, "sha256", detached=True,
                                                                     timestamper=_timestamper(settings)))  # fmt: skip
    except (OSError, SigningError):
        raise
    except Exception as error:  # noqa: BLE001 - a TSA that refuses, a key that cannot sign
        raise SigningError(f"{path} could not be signed ({type(error).__name__}: {error})") from error
    out = path.with_name(path.name + ".p7s")
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(signed.dump())
    os.replace(partial, out)
    return out


def sign_bag(package: Path, settings: SigningSettings) -> None:
    """The bag's tag manifest signed: call once its manifests are final."""
    sign_detached(package / "tagmanifest-sha256.txt", settings)


def reseal(archive: Archive, documents: list[str], settings: SigningSettings | None = None) -> list[str]:
    """Sign again the tag manifests of signed documents that a filing re-bagged (an unfiled
    document gets its 档号 in bag-info.txt when it is filed); returns those signed."""
    settings = settings if settings is not None else SigningSettings.from_config(load_config())
    if not settings.enabled:
        return []
    done = []
    for document in dict.fromkeys(documents):
        package = archive.find_document(document)
        if package is not None and (package / SIGNATURE_FILE).exists():
            sign_bag(package, settings)
            done.append(document)
    return done


def run_async(coroutine):
    import asyncio  # here, not at the top: ~15 ms of every command's start-up (the CLI imports this module)

    return asyncio.run(coroutine)


# --- signing documents archived before a key was configured -----------------------------


@dataclass(frozen=True)
class Signed:
    """What ``sign_documents`` did: the documents it signed and those signed already."""

    signed: list[str]
    already_signed: list[str]

    def summary(self) -> str:
        return f"sign: {len(self.signed)} signed, {len(self.already_signed)} already signed"


def sign_documents(archive: Archive, document: str | None = None, settings: SigningSettings | None = None) -> Signed:
    """``trade-archive sign``: sign one document, or every document not signed yet. Each
    bag is validated first (an altered package is never signed), its access PDF signed,
    its manifests rewritten and its tag manifest signed; each logged as a signing event
    carrying the new tag manifest's SHA-256 (which ``verify`` follows from then on).
    ``settings``: default the configuration's."""
    settings = settings if settings is not None else SigningSettings.from_config(load_config())
    if not settings.enabled:
        raise SigningError("no signing_key configured: set signing_key in trade-archive.toml "
                           "(`trade-archive keys init --demo DIR` makes demo keys)")  # fmt: skip
    if document is not None:
        package = archive.find_document(document)
        if package is None:
            raise NotFound(f"no document {document} in {archive.root}")
        packages: Iterator[Path] = iter([package])
    else:
        packages = archive.documents()
    signed, skipped = [], []
    with archive.writer_lock():  # bags are rewritten: no ingest or filing meanwhile
        logged = logged_tag_manifests(read_events(archive.events_path))
        for package in packages:
            # signed, and the log knows its tag manifest (a stop before the event: signed again, logged)
            if is_signed(package) and logged.get(package.name) == sha256_file(package / "tagmanifest-sha256.txt"):
                skipped.append(package.name)
                continue
            sign_package(archive, package, settings)
            signed.append(package.name)
    return Signed(signed, skipped)


def is_signed(package: Path) -> bool:
    return (package / SIGNATURE_FILE).exists() and bool(pdf_signature_count(package / ACCESS_PDF))


def sign_package(archive: Archive, package: Path, settings: SigningSettings) -> None:
    import bagit

    try:
        bagit.Bag(str(package)).validate(processes=1)
    except bagit.BagError as error:
        if not _signed_before_a_stop(package):
            raise DamagedBag(f"{package} fails validation ({error}): it is not signed; `trade-archive verify` "
                             "shows what changed") from error  # fmt: skip
    access = package / ACCESS_PDF
    if not pdf_signature_count(access):
        sign_pdf(access, settings)
    (package / SIGNATURE_FILE).unlink(missing_ok=True)  # bagit would list it in the new tag manifest
    rebag(package)
    sign_bag(package, settings)
    archive.log("signing", document=package.name, path=str(package.relative_to(archive.root)),
                signer=signer_name(settings), timestamp=bool(settings.tsa_url), files=[ACCESS_PDF, SIGNATURE_FILE],
                tagmanifest_sha256=sha256_file(package / "tagmanifest-sha256.txt"))  # fmt: skip


def _signed_before_a_stop(package: Path) -> bool:
    """Whether a stopped ``sign`` left this bag: the access PDF signed, its manifests not yet
    rewritten. A PDF signature is an incremental update, so the file as the manifest
    recorded it is a prefix of the signed one, ending at an earlier end-of-file marker;
    the bag is otherwise intact (only access.pdf differs)."""
    import bagit

    recorded = bagit.Bag(str(package)).entries.get(ACCESS_PDF, {}).get("sha256")
    signed = (package / ACCESS_PDF).read_bytes()
    if not recorded or not pdf_signature_count(package / ACCESS_PDF):
        return False
    prefixes = (m + 5 + tail for m in _eof_markers(signed)[:-1] for tail in (0, 1, 2))
    if not any(hashlib.sha256(signed[:end]).hexdigest() == recorded for end in prefixes):
        return False
    bag = bagit.Bag(str(package))
    try:
        bag._validate_entries(1)  # noqa: SLF001 - bagit names each mismatching file only here
    except bagit.BagValidationError as error:
        return {d.path for d in error.details or []} == {ACCESS_PDF}
    return False


def _eof_markers(data: bytes) -> list[int]:
    found, start = [], 0
    while (at := data.find(b"%%EOF", start)) >= 0:
        found.append(at)
        start = at + 5
    return found


def pdf_signature_count(path: Path) -> int:
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        with open(path, "rb") as handle:
            return len(PdfFileReader(handle, strict=False).embedded_signatures)
    except Exception:  # noqa: BLE001 - an unreadable PDF has no signature we can count
        return 0
