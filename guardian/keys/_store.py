"""The keystore: certificates in the database, sealed private keys in key files."""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from sqlmodel import Session, col, select

from guardian.errors import MasterKeyError, NoSigningKeyError, NotFoundError, UsageError
from guardian.keys import _x509
from guardian.keys._sealing import MasterKey
from guardian.store.models import KeyRole, KeyStatus, SigningKey, as_utc, utcnow

_PURPOSE = "signing-keys"

log = logging.getLogger("guardian")


@dataclass(frozen=True)
class KeyInfo:
    """Public view of a key: never holds private material."""

    kid: str
    role: KeyRole
    status: KeyStatus
    subject: str
    created_at: dt.datetime
    not_after: dt.datetime | None
    revoked_at: dt.datetime | None
    revocation_reason: str | None

    def to_dict(self) -> dict[str, str | None]:
        def iso(v: dt.datetime | None) -> str | None:
            return v.isoformat() if v else None

        return {
            "kid": self.kid,
            "role": self.role.value,
            "status": self.status.value,
            "subject": self.subject,
            "created_at": iso(self.created_at),
            "not_after": iso(self.not_after),
            "revoked_at": iso(self.revoked_at),
            "revocation_reason": self.revocation_reason,
        }


class ManifestSigner:
    """ES256 signer for C2PA claims: the private key stays inside this object."""

    def __init__(self, kid: str, key: ec.EllipticCurvePrivateKey, chain_pem: str) -> None:
        self.kid = kid
        self.chain_pem = chain_pem
        self._key = key

    def __repr__(self) -> str:
        return f"ManifestSigner(kid={self.kid!r})"

    def sign(self, data: bytes) -> bytes:
        """Raw ``r || s`` ECDSA P-256 / SHA-256 signature, as COSE expects."""
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class AuditSigner:
    """Ed25519 signer for audit-log entries."""

    def __init__(self, kid: str, key: ed25519.Ed25519PrivateKey) -> None:
        self.kid = kid
        self._key = key

    def __repr__(self) -> str:
        return f"AuditSigner(kid={self.kid!r})"

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


def _spki(key: object) -> bytes:
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return b""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _subject(row: SigningKey) -> str:
    if row.role is KeyRole.AUDIT:
        return "audit log (Ed25519)"
    cert = x509.load_pem_x509_certificate(row.public_pem.encode())
    return cert.subject.rfc4514_string()


def _info(row: SigningKey) -> KeyInfo:
    return KeyInfo(
        kid=row.kid,
        role=row.role,
        status=row.status,
        subject=_subject(row),
        created_at=as_utc(row.created_at),
        not_after=as_utc(row.not_after) if row.not_after else None,
        revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
        revocation_reason=row.revocation_reason,
    )


class KeyStore:
    """Creates, rotates, revokes and loads Guardian's keys.

    Methods take the caller's session so that key changes and their audit entries
    commit in one transaction.

    The database alone is not trusted with trust material: a root certificate is a trust
    anchor, and an audit key verifies the log, only when its public key is that of a
    private key sealed under this deployment's master key (:meth:`_bound`). A row that
    someone with write access to the database inserted, without the master key, is
    ignored (and logged).
    """

    def __init__(self, *, keys_dir: Path, master: MasterKey, organization: str) -> None:
        self._dir = keys_dir
        self._master = master
        self._org = organization
        self._bound_pem: dict[str, str] = {}
        """Public keys already checked against their sealed private key, by kid (a kid's
        key file never changes)."""

    # -- queries -----------------------------------------------------------------

    def all(self, session: Session) -> list[KeyInfo]:
        rows = session.exec(select(SigningKey).order_by(col(SigningKey.created_at))).all()
        return [_info(r) for r in rows]

    def get(self, session: Session, kid: str) -> KeyInfo:
        row = session.get(SigningKey, kid)
        if row is None:
            raise NotFoundError(f"no key with id {kid!r}")
        return _info(row)

    def is_initialized(self, session: Session) -> bool:
        return self._active(session, KeyRole.ROOT) is not None

    def trust_anchors_pem(self, session: Session) -> str:
        """Every root certificate ever made (old clips keep their anchor), each bound to a
        private key sealed under the master key."""
        rows = session.exec(select(SigningKey).where(SigningKey.role == KeyRole.ROOT)).all()
        return "".join(r.public_pem for r in rows if self._bound(r))

    def first_root_pem(self, session: Session) -> str:
        """The oldest root certificate: a stable identity for the deployment."""
        stmt = (
            select(SigningKey)
            .where(SigningKey.role == KeyRole.ROOT)
            .order_by(col(SigningKey.created_at))
        )
        row = next((r for r in session.exec(stmt) if self._bound(r)), None)
        if row is None:
            raise NoSigningKeyError("no signing identity yet: run `guardian keys init`")
        return row.public_pem

    def find_signer_by_serial(self, session: Session, serial_hex: str) -> KeyInfo | None:
        stmt = select(SigningKey).where(
            SigningKey.role == KeyRole.SIGNER, SigningKey.serial == serial_hex.lower()
        )
        row = session.exec(stmt).first()
        return _info(row) if row else None

    def audit_public_keys(self, session: Session) -> dict[str, ed25519.Ed25519PublicKey]:
        rows = session.exec(select(SigningKey).where(SigningKey.role == KeyRole.AUDIT)).all()
        out: dict[str, ed25519.Ed25519PublicKey] = {}
        for r in rows:
            if not self._bound(r):
                continue
            key = serialization.load_pem_public_key(r.public_pem.encode())
            if isinstance(key, ed25519.Ed25519PublicKey):
                out[r.kid] = key
        return out

    # -- lifecycle -----------------------------------------------------------------

    def init(self, session: Session) -> list[KeyInfo]:
        """Create the root CA, a signing leaf and the audit key where missing."""
        created: list[SigningKey] = []
        now = utcnow()
        root = self._active(session, KeyRole.ROOT)
        if root is None:
            root_key, root_cert = _x509.make_root(organization=self._org, now=now)
            root = self._add_cert(session, KeyRole.ROOT, root_key, root_cert, None, now)
            created.append(root)
        if self._active(session, KeyRole.SIGNER) is None:
            created.append(self._issue_leaf(session, root, now))
        if self._active(session, KeyRole.AUDIT) is None:
            created.append(self._add_audit_key(session, now))
        return [_info(r) for r in created]

    def rotate(self, session: Session) -> KeyInfo:
        """Retire the active signing leaf (it still verifies) and issue a new one."""
        root = self._active(session, KeyRole.ROOT)
        if root is None:
            raise NoSigningKeyError("no signing identity yet: run `guardian keys init`")
        now = utcnow()
        old = self._active(session, KeyRole.SIGNER)
        if old is not None:
            old.status = KeyStatus.RETIRED
            session.add(old)
            session.flush()
        return _info(self._issue_leaf(session, root, now))

    def rotate_audit(self, session: Session) -> tuple[AuditSigner, KeyInfo]:
        """Retire the audit key and make a new one; returns the old key's signer, which
        must certify the new key in the log (:data:`guardian.audit.CERTIFY_ACTION`)."""
        old = self.audit_signer(session)
        row = self._active(session, KeyRole.AUDIT)
        if row is not None:
            row.status = KeyStatus.RETIRED
            session.add(row)
            session.flush()
        return old, _info(self._add_audit_key(session, utcnow()))

    def audit_public_key(self, session: Session, kid: str) -> ed25519.Ed25519PublicKey:
        """One audit key's public half (bound to its sealed private key)."""
        key = self.audit_public_keys(session).get(kid)
        if key is None:
            raise NotFoundError(f"no audit key {kid!r}")
        return key

    def revoke(self, session: Session, kid: str, *, reason: str) -> KeyInfo:
        """Revoke a signing leaf: clips it signed after now fail verification."""
        row = session.get(SigningKey, kid)
        if row is None:
            raise NotFoundError(f"no key with id {kid!r}")
        if row.role is not KeyRole.SIGNER:
            raise UsageError(f"{kid} is a {row.role.value} key; only signer keys can be revoked")
        if row.status is KeyStatus.REVOKED:
            return _info(row)
        row.status = KeyStatus.REVOKED
        row.revoked_at = utcnow()
        row.revocation_reason = reason
        session.add(row)
        session.flush()
        return _info(row)

    # -- private halves --------------------------------------------------------------

    def manifest_signer(self, session: Session) -> ManifestSigner:
        """The active ES256 signer with its certificate chain."""
        leaf = self._active(session, KeyRole.SIGNER)
        if leaf is None:
            raise NoSigningKeyError(
                "no active signing key: run `guardian keys init` or `guardian keys rotate`"
            )
        root = session.get(SigningKey, leaf.issuer_kid) if leaf.issuer_kid else None
        if root is None:
            raise NoSigningKeyError(f"the issuer of signing key {leaf.kid} is missing")
        key = self._load_private(leaf.kid)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise MasterKeyError(f"key file of {leaf.kid} does not hold an EC key")
        return ManifestSigner(leaf.kid, key, leaf.public_pem + root.public_pem)

    def audit_signer(self, session: Session) -> AuditSigner:
        row = self._active(session, KeyRole.AUDIT)
        if row is None:
            raise NoSigningKeyError("no audit key: run `guardian keys init`")
        key = self._load_private(row.kid)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise MasterKeyError(f"key file of {row.kid} does not hold an Ed25519 key")
        return AuditSigner(row.kid, key)

    # -- helpers -----------------------------------------------------------------------

    def _active(self, session: Session, role: KeyRole) -> SigningKey | None:
        stmt = (
            select(SigningKey)
            .where(SigningKey.role == role, SigningKey.status == KeyStatus.ACTIVE)
            .order_by(col(SigningKey.created_at).desc())
        )
        return session.exec(stmt).first()

    def _issue_leaf(self, session: Session, root: SigningKey, now: dt.datetime) -> SigningKey:
        root_key = self._load_private(root.kid)
        if not isinstance(root_key, ec.EllipticCurvePrivateKey):
            raise MasterKeyError(f"key file of {root.kid} does not hold an EC key")
        root_cert = x509.load_pem_x509_certificate(root.public_pem.encode())
        key, cert = _x509.make_leaf(
            root_key=root_key,
            root_cert=root_cert,
            organization=self._org,
            common_name=f"{self._org} Guardian Signer {secrets.token_hex(3)}",
            now=now,
        )
        return self._add_cert(session, KeyRole.SIGNER, key, cert, root.kid, now)

    def _add_cert(
        self,
        session: Session,
        role: KeyRole,
        key: ec.EllipticCurvePrivateKey,
        cert: x509.Certificate,
        issuer_kid: str | None,
        now: dt.datetime,
    ) -> SigningKey:
        prefix = "root" if role is KeyRole.ROOT else "sig"
        kid = f"{prefix}-{_x509.cert_fingerprint(cert)[:16]}"
        self._write_private(kid, _x509.private_der(key))
        row = SigningKey(
            kid=kid,
            role=role,
            status=KeyStatus.ACTIVE,
            public_pem=_x509.cert_pem(cert),
            serial=format(cert.serial_number, "x"),
            issuer_kid=issuer_kid,
            created_at=now,
            not_after=cert.not_valid_after_utc,
        )
        session.add(row)
        session.flush()
        return row

    def _add_audit_key(self, session: Session, now: dt.datetime) -> SigningKey:
        key = ed25519.Ed25519PrivateKey.generate()
        pub = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        kid = f"audit-{raw.hex()[:16]}"
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._write_private(kid, der)
        row = SigningKey(
            kid=kid,
            role=KeyRole.AUDIT,
            status=KeyStatus.ACTIVE,
            public_pem=pub.decode(),
            created_at=now,
        )
        session.add(row)
        session.flush()
        return row

    def _bound(self, row: SigningKey) -> bool:
        """Whether ``row``'s public key belongs to a private key sealed under the master
        key (key id as AAD), i.e. whether this deployment made the row."""
        if self._bound_pem.get(row.kid) == row.public_pem:
            return True
        try:
            private = self._load_private(row.kid)
            if row.role is KeyRole.AUDIT:
                public = serialization.load_pem_public_key(row.public_pem.encode())
            else:
                public = x509.load_pem_x509_certificate(row.public_pem.encode()).public_key()
        except (NoSigningKeyError, MasterKeyError, ValueError):
            log.warning("key %s in the database has no sealed private key; ignored", row.kid)
            return False
        ok = _spki(public) == _spki(private.public_key())
        if ok:
            self._bound_pem[row.kid] = row.public_pem
        else:
            log.warning("key %s in the database does not match its sealed key; ignored", row.kid)
        return ok

    def _key_path(self, kid: str) -> Path:
        return self._dir / f"{kid}.key"

    def _write_private(self, kid: str, der: bytes) -> None:
        """Write the sealed key with mode 0600 via a same-directory rename."""
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        sealed = self._master.seal(der, purpose=_PURPOSE, aad=kid.encode())
        tmp = self._dir / f".{kid}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(sealed)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._key_path(kid))
        finally:
            tmp.unlink(missing_ok=True)

    def _load_private(self, kid: str) -> ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
        path = self._key_path(kid)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError as e:
            raise NoSigningKeyError(f"key file for {kid} is missing ({path})") from e
        der = self._master.open(sealed, purpose=_PURPOSE, aad=kid.encode())
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise MasterKeyError(f"key file of {kid} holds an unsupported key type")
        return key
