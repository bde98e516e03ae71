"""The vault: envelope encryption under per-subject data keys."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardian.app import Guardian
from guardian.errors import MasterKeyError, VaultError
from guardian.keys import MasterKey
from guardian.store import Subject, VaultBlob
from guardian.vault import BlobKind, Vault


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


def test_another_master_key_cannot_open_the_vault(g: Guardian) -> None:
    sub = _subject(g)
    with g.transaction() as s:
        blob = g.vault.put(s, sub, BlobKind.SAMPLE, b"secret voice")
    stranger = Vault(MasterKey(secrets.token_bytes(32)))
    with g.reading() as s, pytest.raises(MasterKeyError):
        stranger.get(s, blob.id)


def test_destroying_the_data_key_makes_every_blob_unreadable(g: Guardian) -> None:
    sub = _subject(g)
    with g.transaction() as s:
        blobs = [g.vault.put(s, sub, BlobKind.SAMPLE, bytes([i]) * 100) for i in range(3)]
        subject = s.get(Subject, sub)
        assert subject is not None
        subject.wrapped_key = None
        s.add(subject)
    with g.reading() as s:
        for blob in blobs:
            with pytest.raises(VaultError, match="erased"):
                g.vault.get(s, blob.id)


def test_repr_never_shows_key_material(g: Guardian) -> None:
    assert "redacted" in repr(g.vault)


@given(st.binary(max_size=2048))
def test_any_bytes_round_trip(data: bytes) -> None:
    from guardian.keys._sealing import open_sealed, seal

    key = secrets.token_bytes(32)
    assert open_sealed(key, seal(key, data, aad=b"x"), aad=b"x") == data
