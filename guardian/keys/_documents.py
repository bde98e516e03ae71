"""Signed JSON documents: RFC 8785 canonical bodies with detached signatures.

Consent records and erasure receipts are such documents. Every signature covers the
canonical bytes of the body, so a document can be checked offline from itself:

* ``service``: ES256 by Guardian's signing certificate, carrying its chain (leaf, then
  root). The check verifies the signature, that the root issued the leaf, that the leaf
  may sign documents, and the signing time against the leaf's validity. Whether the root
  is *this* deployment's trust anchor is a separate check (:func:`is_anchor`).
* ``subject``: Ed25519 by a data subject's own key, whose public half is in the body.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self, cast

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from guardian.errors import DocumentError
from guardian.keys._store import ManifestSigner

_DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")

Role = Literal["service", "subject"]


def canonical(body: Mapping[str, Any]) -> bytes:
    """The RFC 8785 bytes that every signature of a record covers."""
    return rfc8785.dumps(cast(Any, dict(body)))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as e:
        raise DocumentError("a signature or key is not valid base64") from e


@dataclass(frozen=True)
class Signature:
    """One signature over a record body."""

    role: Role
    alg: Literal["ES256", "Ed25519"]
    sig: str
    kid: str | None = None
    chain: tuple[str, ...] = ()
    """PEM certificates, leaf first (service signatures)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "alg": self.alg, "sig": self.sig}
        if self.kid is not None:
            out["kid"] = self.kid
        if self.chain:
            out["chain"] = list(self.chain)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        role, alg = data.get("role"), data.get("alg")
        if (role, alg) not in {("service", "ES256"), ("subject", "Ed25519")}:
            raise DocumentError(f"unsupported signature role/algorithm {role}/{alg}")
        chain = data.get("chain", [])
        if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
            raise DocumentError("a signature's chain must be a list of PEM strings")
        return cls(
            role=cast(Role, role),
            alg=cast(Literal["ES256", "Ed25519"], alg),
            sig=str(data.get("sig", "")),
            kid=data.get("kid"),
            chain=tuple(chain),
        )


@dataclass(frozen=True)
class SignedDocument:
    """A typed body with its signatures: ``{KEY: body, "signatures": [...]}``.

    Subclasses set ``TYPE`` (the body's ``type``) and ``KEY`` (the envelope key).
    """

    TYPE: ClassVar[str] = ""
    KEY: ClassVar[str] = "document"

    body: Mapping[str, Any]
    signatures: tuple[Signature, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.body.get("type") != self.TYPE:
            raise DocumentError(f"not a {self.KEY} (type must be {self.TYPE})")
        roles = [s.role for s in self.signatures]
        if len(roles) != len(set(roles)):
            raise DocumentError(f"a {self.KEY} has at most one signature per role")

    def signature(self, role: Role) -> Signature | None:
        return next((s for s in self.signatures if s.role == role), None)

    def with_signature(self, signature: Signature) -> Self:
        others = tuple(s for s in self.signatures if s.role != signature.role)
        return type(self)(self.body, (*others, signature))

    def to_dict(self) -> dict[str, Any]:
        return {self.KEY: dict(self.body), "signatures": [s.to_dict() for s in self.signatures]}

    def to_bytes(self) -> bytes:
        """Canonical JSON of the whole signed document (stable, so it can be hashed)."""
        return rfc8785.dumps(cast(Any, self.to_dict()))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DocumentError(f"the {cls.KEY} is not valid JSON ({e})") from e
        if not isinstance(obj, dict) or not isinstance(obj.get(cls.KEY), dict):
            raise DocumentError(f"the file has no {cls.KEY!r} object")
        sigs = obj.get("signatures", [])
        if not isinstance(sigs, list) or not all(isinstance(s, dict) for s in sigs):
            raise DocumentError("'signatures' must be a list of objects")
        return cls(obj[cls.KEY], tuple(Signature.from_dict(s) for s in sigs))


def sign_as_service(body: Mapping[str, Any], signer: ManifestSigner) -> Signature:
    """ES256 signature by Guardian's active signing certificate."""
    chain = tuple(
        c.public_bytes(serialization.Encoding.PEM).decode()
        for c in x509.load_pem_x509_certificates(signer.chain_pem.encode())
    )
    return Signature(
        role="service",
        alg="ES256",
        sig=_b64(signer.sign(canonical(body))),
        kid=signer.kid,
        chain=chain,
    )


def sign_as_subject(body: Mapping[str, Any], key: ed25519.Ed25519PrivateKey) -> Signature:
    """The subject's co-signature; their public key must already be in the body."""
    if body.get("subject", {}).get("public_key") != public_key_b64(key.public_key()):
        raise DocumentError("this key is not the subject key named in the document")
    return Signature(role="subject", alg="Ed25519", sig=_b64(key.sign(canonical(body))))


def public_key_b64(key: ed25519.Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64(raw)


def _issued_by(leaf: x509.Certificate, root: x509.Certificate) -> bool:
    key = root.public_key()
    algo = leaf.signature_hash_algorithm
    if not isinstance(key, ec.EllipticCurvePublicKey) or algo is None:
        return False
    try:
        key.verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(algo))
    except InvalidSignature:
        return False
    return leaf.issuer == root.subject


def _may_sign_documents(leaf: x509.Certificate) -> bool:
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return _DOCUMENT_SIGNING in list(eku)


def service_problems(sig: Signature, message: bytes, signed_at: dt.datetime | None) -> list[str]:
    if len(sig.chain) != 2:
        return ["the service signature must carry its leaf and root certificates"]
    try:
        leaf, root = (x509.load_pem_x509_certificate(c.encode()) for c in sig.chain)
    except ValueError:
        return ["the service certificate chain cannot be parsed"]
    problems = []
    if not _issued_by(leaf, root) or not _issued_by(root, root):
        problems.append("the service certificate was not issued by the included root")
    if not _may_sign_documents(leaf):
        problems.append("the service certificate may not sign documents")
    if signed_at and not leaf.not_valid_before_utc <= signed_at <= leaf.not_valid_after_utc:
        problems.append("the record was signed outside the certificate's validity")
    raw = _unb64(sig.sig)
    key = leaf.public_key()
    if len(raw) != 64 or not isinstance(key, ec.EllipticCurvePublicKey):
        return [*problems, "the service signature is malformed"]
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        problems.append("the service signature does not match the record (altered?)")
    return problems


def subject_problems(sig: Signature, body: Mapping[str, Any], message: bytes) -> list[str]:
    public = body.get("subject", {}).get("public_key")
    if not public:
        return ["the record has a subject signature but names no subject key"]
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(_unb64(public))
        key.verify(_unb64(sig.sig), message)
    except (ValueError, InvalidSignature):
        return ["the subject signature does not match the record (altered?)"]
    return []


def signed_at(body: Mapping[str, Any], key: str = "created_at") -> dt.datetime | None:
    """The signing time a body states, if it parses."""
    try:
        return dt.datetime.fromisoformat(str(body.get(key)))
    except ValueError:
        return None


def is_anchor(root_pem: str, anchors_pem: str) -> bool:
    """Whether ``root_pem`` is one of the PEM certificates in ``anchors_pem``."""
    try:
        root = x509.load_pem_x509_certificate(root_pem.encode())
        anchors: Sequence[x509.Certificate] = x509.load_pem_x509_certificates(anchors_pem.encode())
    except ValueError:
        return False
    return any(a == root for a in anchors)


@dataclass(frozen=True)
class DocumentCheck:
    """Result of checking a document's signatures; ``bool`` is True when all hold."""

    id_key: str
    document_id: str
    service_valid: bool
    service_trusted: bool | None
    """None when no trust anchors were given (a pure offline check): then the signature
    may be valid, but anyone can make a CA, so the document is not taken as valid."""
    subject_signed: bool
    subject_valid: bool | None
    problems: tuple[str, ...]

    def __bool__(self) -> bool:
        return not self.problems and self.service_trusted is True

    @property
    def signer_untrusted(self) -> bool:
        """Valid signatures from a signer no trust anchor vouches for (none was given)."""
        return not self.problems and self.service_valid and self.service_trusted is None

    def to_dict(self) -> dict[str, Any]:
        return {
            self.id_key: self.document_id,
            "valid": bool(self),
            "service": {"valid": self.service_valid, "trusted": self.service_trusted},
            "signer_untrusted": self.signer_untrusted,
            "subject": {"signed": self.subject_signed, "valid": self.subject_valid},
            "problems": list(self.problems),
        }


def check_document(
    doc: SignedDocument, *, id_key: str, trust_anchors_pem: str | None = None
) -> DocumentCheck:
    """Check every signature of ``doc`` (non-raising form); a service signature is required."""
    message = canonical(doc.body)
    problems: list[str] = []
    service = doc.signature("service")
    trusted: bool | None = None
    if service is None:
        problems.append(f"the {doc.KEY} has no service signature")
        service_ok = False
    else:
        found = service_problems(service, message, signed_at(doc.body))
        service_ok = not found
        problems += found
        if trust_anchors_pem is not None:
            trusted = bool(service.chain) and is_anchor(service.chain[-1], trust_anchors_pem)
            if not trusted:
                problems.append(f"the {doc.KEY} was signed by another deployment's root")
    subject = doc.signature("subject")
    subject_ok: bool | None = None
    if subject is not None:
        found = subject_problems(subject, doc.body, message)
        subject_ok = not found
        problems += found
    return DocumentCheck(
        id_key=id_key,
        document_id=str(doc.body.get(id_key, "")),
        service_valid=service_ok,
        service_trusted=trusted,
        subject_signed=subject is not None,
        subject_valid=subject_ok,
        problems=tuple(problems),
    )
