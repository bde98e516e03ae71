from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from guardian.app import Guardian, init_keys, list_keys, open_guardian, revoke_key, rotate_key
from guardian.config import Settings
from guardian.errors import MasterKeyError, NoSigningKeyError, NotFoundError, UsageError
from guardian.keys import load_master_key, parse_master_key
from guardian.store import KeyRole, KeyStatus, SigningKey
from tests.conftest import tree_bytes


def test_master_key_file_is_created_0600(tmp_path: Path) -> None:
    path = tmp_path / "h" / "master.key"
    key = load_master_key(env_value=None, path=path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_master_key(env_value=None, path=path, create=False)
    assert again.material == key.material
    assert "redacted" in repr(key)


def test_master_key_refuses_group_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    load_master_key(env_value=None, path=path, create=True)
    os.chmod(path, 0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        load_master_key(env_value=None, path=path, create=False)


def test_master_key_from_env_and_bad_env() -> None:
    raw = os.urandom(32)
    assert parse_master_key(base64.b64encode(raw).decode()).material == raw
    with pytest.raises(MasterKeyError):
        parse_master_key("c2hvcnQ=")
    with pytest.raises(MasterKeyError):
        parse_master_key("not base64 at all!!")


def test_init_creates_root_signer_audit_and_is_idempotent(g: Guardian) -> None:
    created = init_keys(g)
    assert sorted(k.role.value for k in created) == ["audit", "root", "signer"]
    assert init_keys(g) == []
    assert len(list_keys(g)) == 3


def test_signer_certificate_is_acceptable_to_c2pa(g: Guardian) -> None:
    init_keys(g)
    with g.reading() as s:
        leaf_row = s.exec(
            __import__("sqlmodel").select(SigningKey).where(SigningKey.role == KeyRole.SIGNER)
        ).one()
    leaf = x509.load_pem_x509_certificate(leaf_row.public_pem.encode())
    assert leaf.issuer != leaf.subject, "C2PA rejects self-signed leaves"
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert leaf.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]


def test_no_private_key_is_stored_in_clear(g: Guardian, settings) -> None:  # type: ignore[no-untyped-def]
    init_keys(g)
    with g.reading() as s:
        signer = g.keys.manifest_signer(s)
    der = signer._key.private_bytes(
        __import__("cryptography").hazmat.primitives.serialization.Encoding.DER,
        __import__("cryptography").hazmat.primitives.serialization.PrivateFormat.PKCS8,
        __import__("cryptography").hazmat.primitives.serialization.NoEncryption(),
    )
    everything = tree_bytes(settings.home)
    assert b"PRIVATE KEY" not in everything
    scalar = signer._key.private_numbers().private_value.to_bytes(32, "big")
    assert der not in everything and scalar not in everything
    for key_file in settings.keys_dir.glob("*.key"):
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_wrong_master_key_cannot_open_keys(g: Guardian, settings) -> None:  # type: ignore[no-untyped-def]
    from guardian.keys import KeyStore, MasterKey

    init_keys(g)
    other = KeyStore(keys_dir=settings.keys_dir, master=MasterKey(os.urandom(32)), organization="x")
    with g.reading() as s, pytest.raises(MasterKeyError, match="wrong master key"):
        other.manifest_signer(s)


def test_rotate_retires_and_revoke_marks(g: Guardian) -> None:
    init_keys(g)
    old = next(k for k in list_keys(g) if k.role is KeyRole.SIGNER)
    new = rotate_key(g)
    statuses = {k.kid: k.status for k in list_keys(g)}
    assert statuses[old.kid] is KeyStatus.RETIRED and statuses[new.kid] is KeyStatus.ACTIVE
    revoked = revoke_key(g, new.kid, reason="compromised")
    assert revoked.status is KeyStatus.REVOKED and revoked.revoked_at is not None
    with g.reading() as s, pytest.raises(NoSigningKeyError, match="rotate"):
        g.keys.manifest_signer(s)


def test_revoke_errors(g: Guardian) -> None:
    init_keys(g)
    root = next(k for k in list_keys(g) if k.role is KeyRole.ROOT)
    with pytest.raises(UsageError, match="only signer keys"):
        revoke_key(g, root.kid, reason="x")
    with pytest.raises(NotFoundError):
        revoke_key(g, "sig-doesnotexist", reason="x")


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(bytes(32)).decode(),  # all zero
        base64.b64encode(b"correct horse battery staple!!!!").decode(),  # a passphrase
        base64.b64encode(b"\x01\x02" * 16).decode(),  # a pattern
    ],
)
def test_low_entropy_master_key_is_refused(text: str) -> None:
    with pytest.raises(MasterKeyError, match=r"entropy|password"):
        parse_master_key(text)


def test_master_key_with_stray_characters_is_refused_not_silently_dropped() -> None:
    good = base64.b64encode(os.urandom(32)).decode()
    assert parse_master_key(good)  # the clean key parses
    with pytest.raises(MasterKeyError, match="base64"):
        parse_master_key(good[:10] + "!*" + good[10:])
    with pytest.raises(MasterKeyError, match="base64"):
        parse_master_key(good[:10] + " " + good[10:])


def test_missing_master_key_for_an_existing_home_is_an_error_not_a_new_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    first = open_guardian(settings.model_copy(update={"master_key": key}))
    init_keys(first)
    first.engine.dispose()
    assert not settings.master_key_path.exists()
    with pytest.raises(MasterKeyError, match="GUARDIAN_MASTER_KEY is not set"):
        open_guardian(settings)
    assert not settings.master_key_path.exists(), "no fresh master key was made"


def test_master_key_file_can_live_outside_the_home(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "secrets" / "master.key"
    g = open_guardian(settings.model_copy(update={"master_key_file": outside}))
    init_keys(g)
    g.engine.dispose()
    assert outside.exists() and stat.S_IMODE(outside.stat().st_mode) == 0o600
    assert not (settings.home / "master.key").exists()


def test_keys_list_warns_before_the_active_signing_certificate_expires(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    from guardian.app import key_warnings
    from guardian.keys import _x509

    g = open_guardian(settings)
    init_keys(g)
    assert key_warnings(g) == []
    monkeypatch.setattr(_x509, "LEAF_VALIDITY", dt.timedelta(days=10))
    rotate_key(g)
    (warning,) = key_warnings(g)
    assert "expires" in warning and "keys rotate" in warning
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=11)
    assert "expired" in key_warnings(g, now=later)[0]
    g.engine.dispose()


def test_a_rogue_root_inserted_in_the_database_is_not_a_trust_anchor(
    g: Guardian, tmp_path: Path
) -> None:
    """DB write access, no master key: insert a root, sign a clip under it."""
    import datetime as dt

    from guardian.app import Verdict, verify_bytes
    from guardian.keys import ManifestSigner, _x509
    from guardian.provenance import GuardianAssertion, build_manifest, embed
    from guardian.store import utcnow
    from tests.conftest import write_clip

    init_keys(g)
    now = dt.datetime.now(dt.UTC)
    root_key, root = _x509.make_root(organization="Guardian", now=now)
    key, leaf = _x509.make_leaf(
        root_key=root_key, root_cert=root, organization="Guardian", common_name="x", now=now
    )
    with g.transaction() as s:
        s.add(
            SigningKey(
                kid="root-rogue",
                role=KeyRole.ROOT,
                status=KeyStatus.RETIRED,
                public_pem=_x509.cert_pem(root),
                serial=format(root.serial_number, "x"),
                created_at=utcnow(),
            )
        )
    signer = ManifestSigner("sig-rogue", key, _x509.cert_pem(leaf) + _x509.cert_pem(root))
    clip = write_clip(tmp_path / "c.wav")
    forged = embed(
        clip.read_bytes(),
        mime="audio/wav",
        signer=signer,
        manifest=build_manifest(
            GuardianAssertion(
                label_id="lbl_rogue",
                created_at="2026-01-01T00:00:00Z",
                software="x",
                voice_id="voice_victim",
                consent_id="consent_victim",
            ),
            title="c.wav",
            mime="audio/wav",
        ),
    )
    result = verify_bytes(g, forged)
    assert result.verdict is Verdict.TAMPERED, result.reasons
    assert not result.manifest.trusted
