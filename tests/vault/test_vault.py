"""The vault: envelope encryption under per-subject data keys."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session

from guardian.app import Guardian, open_guardian
from guardian.errors import MasterKeyError, VaultError
from guardian.keys import MasterKey, load_master_key
from guardian.store import Subject, VaultBlob, VaultState, make_engine
from guardian.vault import BlobKind, Vault
from guardian.vault._rootkey import RootKeyFile


def _master(g: Guardian) -> MasterKey:
    return load_master_key(env_value=None, path=g.settings.master_key_path, create=False)


def _pending(g: Guardian) -> bool:
    """Whether a rotated root key is waiting to be put in force."""
    path = g.settings.resolved_vault_key_path
    return path.with_name(path.name + ".next").exists()


def _subject(g: Guardian) -> str:
    with g.transaction() as s:
        return g.vault.new_subject(s).id


def test_round_trip_and_ciphertext_hides_plaintext(g: Guardian) -> None:
    sub = _subject(g)
    plaintext = b"RIFF" + secrets.token_bytes(4096)
    with g.transaction() as s:
        blob = g.vault.put(s, sub, BlobKind.SAMPLE, plaintext, ref="voice_x")
    with g.reading() as s:
        row = s.get(VaultBlob, blob.id)
        assert row is not None and plaintext[64:128] not in row.ciphertext
        assert g.vault.get(s, blob.id) == plaintext
        assert [b.id for b in g.vault.blobs(s, sub, kind=BlobKind.SAMPLE)] == [blob.id]


def test_each_subject_has_its_own_key(g: Guardian) -> None:
    a, b = _subject(g), _subject(g)
    with g.reading() as s:
        ka, kb = s.get(Subject, a), s.get(Subject, b)
    assert ka is not None and kb is not None and ka.wrapped_key != kb.wrapped_key


def test_a_ciphertext_cannot_be_moved_to_another_subject_or_kind(g: Guardian) -> None:
    a, b = _subject(g), _subject(g)
    with g.transaction() as s:
        blob_a = g.vault.put(s, a, BlobKind.SAMPLE, b"voice of a")
        blob_b = g.vault.put(s, b, BlobKind.SAMPLE, b"voice of b")
    with g.transaction() as s:
        row_a, row_b = s.get(VaultBlob, blob_a.id), s.get(VaultBlob, blob_b.id)
        assert row_a is not None and row_b is not None
        row_b.ciphertext = row_a.ciphertext
        row_a.kind = BlobKind.EMBEDDING.value
        s.add(row_a)
        s.add(row_b)
    with g.reading() as s:
        for blob in (blob_a, blob_b):
            with pytest.raises(VaultError, match="authentication"):
                g.vault.get(s, blob.id)


def test_a_sealed_blob_is_stored_only_for_the_subject_and_kind_it_was_sealed_for(
    g: Guardian,
) -> None:
    """What a remote training run hands back is checked before it is stored."""
    a, b = _subject(g), _subject(g)
    with g.reading() as s:
        sealed = g.vault.seal(s, a, BlobKind.ADAPTER, b"adapter bytes")
    assert b"adapter bytes" not in sealed.ciphertext
    forged = [
        replace(sealed, subject_id=b),
        replace(sealed, kind=BlobKind.SAMPLE),
        replace(sealed, ciphertext=sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 1])),
    ]
    for bad in forged:
        with pytest.raises(VaultError), g.transaction() as s:
            g.vault.put_sealed(s, bad, ref="voice_x")
    with g.transaction() as s:
        stored = g.vault.put_sealed(s, sealed, ref="voice_x")
    with g.reading() as s:
        assert g.vault.get(s, stored.id) == b"adapter bytes"
        assert [x.id for x in g.vault.blobs(s, a)] == [sealed.blob_id]
        assert g.vault.blobs(s, b) == []


def test_another_master_key_cannot_open_the_vault(g: Guardian) -> None:
    sub = _subject(g)
    with g.transaction() as s:
        blob = g.vault.put(s, sub, BlobKind.SAMPLE, b"secret voice")
    key_path = g.settings.resolved_vault_key_path
    stranger = Vault(MasterKey(secrets.token_bytes(32)), key_path)
    with g.reading() as s, pytest.raises(MasterKeyError):
        stranger.get(s, blob.id)


def test_shredding_destroys_one_subject_and_keeps_the_others(g: Guardian) -> None:
    gone, kept = _subject(g), _subject(g)
    with g.transaction() as s:
        blobs = [g.vault.put(s, gone, BlobKind.SAMPLE, bytes([i]) * 100) for i in range(3)]
        other = g.vault.put(s, kept, BlobKind.SAMPLE, b"still here")
    with g.transaction() as s:
        result = g.vault.shred(s, {gone})
    with g.reading() as s:
        g.vault.finish_shred(s)
        assert result.epoch == 2 and result.blobs == 3 and result.rewrapped == 1
        assert g.vault.get(s, other.id) == b"still here"
        for blob in blobs:
            with pytest.raises(VaultError, match="does not exist"):
                g.vault.get(s, blob.id)
        subject = s.get(Subject, gone)
        assert subject is not None and subject.wrapped_key is None
    assert not _pending(g)


def test_a_backup_cannot_be_opened_with_the_live_keys_after_shredding(
    g: Guardian, tmp_path: Path
) -> None:
    sub = _subject(g)
    with g.transaction() as s:
        blob = g.vault.put(s, sub, BlobKind.SAMPLE, b"the subject's voice")
    g.engine.dispose()
    backup = tmp_path / "backup"
    shutil.copytree(g.settings.home, backup)
    with g.transaction() as s:
        g.vault.shred(s, {sub})
    with g.reading() as s:
        g.vault.finish_shred(s)
    # The backup's database, opened with the live master key and the live vault key.
    engine = make_engine(f"sqlite:///{backup / 'guardian.db'}")
    live = Vault(_master(g), g.settings.resolved_vault_key_path)
    with Session(engine) as s:
        subject = s.get(Subject, sub)
        assert subject is not None and subject.wrapped_key is not None  # copied, still there
        assert s.get(VaultBlob, blob.id) is not None
        with pytest.raises(VaultError, match="does not belong"):
            live.get(s, blob.id)
        # Even forcing the live epoch onto the backup, its wrapped data key stays sealed.
        state = s.get(VaultState, 1)
        assert state is not None
        current = RootKeyFile(g.settings.resolved_vault_key_path, _master(g)).read()
        assert current is not None
        state.epoch, state.key_check = current.epoch, current.check
        s.add(state)
        s.flush()
        with pytest.raises(VaultError, match="cannot be unwrapped"):
            live.get(s, blob.id)
    engine.dispose()


def test_an_interrupted_rotation_is_finished_or_discarded(g: Guardian) -> None:
    sub, other = _subject(g), _subject(g)
    with g.transaction() as s:
        kept = g.vault.put(s, other, BlobKind.SAMPLE, b"kept")
    # Crash after the commit, before the new key was put in force.
    with g.transaction() as s:
        g.vault.shred(s, {sub})
    assert _pending(g)
    reopened = open_guardian(g.settings)
    with reopened.reading() as s:
        assert reopened.vault.get(s, kept.id) == b"kept"
    assert not _pending(reopened)
    # Crash before the commit: the database stays at the old epoch, the file is dropped.
    with pytest.raises(RuntimeError), reopened.transaction() as s:
        reopened.vault.shred(s, {other})
        raise RuntimeError("crash")
    again = open_guardian(g.settings)
    with again.reading() as s:
        assert again.vault.get(s, kept.id) == b"kept"
    assert not _pending(again)


def test_repr_never_shows_key_material(g: Guardian) -> None:
    assert "redacted" in repr(g.vault)


@given(st.binary(max_size=2048))
def test_any_bytes_round_trip(data: bytes) -> None:
    from guardian.keys._sealing import open_sealed, seal

    key = secrets.token_bytes(32)
    assert open_sealed(key, seal(key, data, aad=b"x"), aad=b"x") == data
