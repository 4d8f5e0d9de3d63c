"""Checking the centre's signatures (``archive.preservation.signing`` makes them): each
access PDF's signature and the detached signature of each package's tag manifest, with
their timestamps, validated against the trust roots; for ``verify``, the four-property
check and the hand-over's register. A missing signature is a finding only where signing
is configured, or where the package was signed in part."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archive.preservation.signing import (
    ACCESS_PDF,
    SIGNATURE_FILE,
    SigningSettings,
    load_signer,
    pdf_signature_count,
    quiet_pyhanko,
    run_async,
)


@dataclass(frozen=True)
class SignatureFinding:
    kind: str  # signature_invalid | signature_missing | timestamp_invalid
    file: str  # relative to the package
    detail: str


def _unreadable(path: Path) -> str | None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        with open(path, "rb") as handle:
            PdfFileReader(handle, strict=False).embedded_signatures  # noqa: B018 - parsing is the check
    except Exception as error:  # noqa: BLE001 - whatever stops the parse
        return f"{type(error).__name__}: {error}"
    return None


def _trust_context(settings: SigningSettings):
    """Certificates must chain to ``trust_roots``; where none are configured, to the chain
    the centre's own PKCS#12 carries (the demo's root)."""
    from pyhanko.keys import load_certs_from_pemder
    from pyhanko_certvalidator import ValidationContext

    if settings.trust_roots is not None:
        roots = list(load_certs_from_pemder([str(settings.trust_roots)]))
    elif settings.enabled:
        signer = load_signer(settings)
        roots = [c for c in signer.cert_registry if c.issuer == c.subject] or [signer.signing_cert]
    else:
        roots = []
    return ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")


def check_signatures(package: Path, settings: SigningSettings) -> list[SignatureFinding]:
    """Every signature and timestamp of the package, validated; a signature missing is a
    finding only where signing is configured (or the package was signed in part)."""
    cms_file = package / SIGNATURE_FILE
    pdf_count = pdf_signature_count(package / ACCESS_PDF)
    if not (settings.enabled or cms_file.exists() or pdf_count):
        return []
    with quiet_pyhanko():
        return _checked(package, cms_file, pdf_count, _trust_context(settings))


def _checked(package: Path, cms_file: Path, pdf_count: int, context) -> list[SignatureFinding]:  # noqa: ANN001
    findings: list[SignatureFinding] = []
    if pdf_count:
        findings += _check_pdf(package / ACCESS_PDF, context)
    elif unreadable := _unreadable(package / ACCESS_PDF):  # damaged past parsing: its signature with it
        findings.append(
            SignatureFinding("signature_invalid", ACCESS_PDF, f"the access PDF cannot be read ({unreadable})")
        )
    else:
        findings.append(SignatureFinding("signature_missing", ACCESS_PDF, "the access PDF carries no signature"))
    if cms_file.exists():
        findings += _check_detached(package / "tagmanifest-sha256.txt", cms_file, context)
    else:
        findings.append(SignatureFinding("signature_missing", SIGNATURE_FILE, "the tag manifest is not signed"))
    return findings


def _check_pdf(path: Path, context) -> list[SignatureFinding]:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    findings = []
    try:
        with open(path, "rb") as handle:
            signatures = PdfFileReader(handle, strict=False).embedded_signatures
            for number, signature in enumerate(signatures, 1):
                status = validate_pdf_signature(signature, context, context)
                last = number == len(signatures)
                if problem := _status_problem(status):
                    findings.append(SignatureFinding("signature_invalid", ACCESS_PDF, problem))
                elif last and status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
                    findings.append(SignatureFinding("signature_invalid", ACCESS_PDF,
                                                     "bytes were added after the signature"))  # fmt: skip
                findings += _timestamp_problem(status, ACCESS_PDF)
    except Exception as error:  # noqa: BLE001 - a signature too damaged to parse is an invalid one
        findings.append(SignatureFinding("signature_invalid", ACCESS_PDF, f"{type(error).__name__}: {error}"))
    return findings


def _check_detached(data_path: Path, signature_path: Path, context) -> list[SignatureFinding]:
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms

    name = signature_path.name
    try:
        signed_data = cms.ContentInfo.load(signature_path.read_bytes())["content"]
        status = run_async(async_validate_detached_cms(data_path.read_bytes(), signed_data, context, context))
    except Exception as error:  # noqa: BLE001 - a damaged signature file is an invalid signature
        return [SignatureFinding("signature_invalid", name, f"{type(error).__name__}: {error}")]
    problem = _status_problem(status)
    findings = [SignatureFinding("signature_invalid", name, f"{data_path.name}: {problem}")] if problem else []
    return findings + _timestamp_problem(status, name)


def _status_problem(status) -> str | None:
    if not status.intact:
        return "the signed content changed since it was signed (digest mismatch)"
    if not status.valid:
        return "the signature value does not verify"
    if not status.trusted:
        who = status.signing_cert.subject.human_friendly
        return f"the signer's certificate does not chain to the trust roots ({who}): set trust_roots"
    return None


def _timestamp_problem(status, file: str) -> list[SignatureFinding]:
    stamp = status.timestamp_validity
    if stamp is None:
        return []
    if not (stamp.intact and stamp.valid):
        return [SignatureFinding("timestamp_invalid", file, "the timestamp token does not verify")]
    if not stamp.trusted:
        return [SignatureFinding("timestamp_invalid", file, "the timestamp authority is not trusted")]
    return []


def signature_summary(package: Path, settings: SigningSettings) -> dict:
    """Who signed the access PDF, when by its own clock, and the TSA's time (None where
    unsigned or not timestamped), for registers and reports."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    summary: dict = {"signer": None, "signing_time": None, "timestamp": None}
    try:
        with open(package / ACCESS_PDF, "rb") as handle:
            signatures = PdfFileReader(handle, strict=False).embedded_signatures
            if signatures:
                signature = signatures[-1]
                own = signature.self_reported_timestamp
                summary.update(signer=signature.signer_cert.subject.human_friendly, timestamp=_tsa_time(signature),
                               signing_time=own.isoformat() if own else None)  # fmt: skip
    except Exception:  # noqa: BLE001 - a register names what it can; verify reports the damage
        pass
    return summary


def _tsa_time(signature) -> str | None:  # noqa: ANN001 - pyHanko's EmbeddedPdfSignature
    """The RFC 3161 token's genTime, from the signature's unsigned attributes."""
    attributes = signature.signer_info["unsigned_attrs"]
    for attribute in [] if attributes.native is None else attributes:
        if attribute["type"].native == "signature_time_stamp_token":
            token = attribute["values"][0]
            info = token["content"]["encap_content_info"]["content"].parsed
            return info["gen_time"].native.isoformat()
    return None
