"""The provenance registry: every labeled clip, findable without its metadata."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlmodel import Session, col, select

from guardian.audio import Audio
from guardian.provenance import fingerprint as fp
from guardian.store.models import FingerprintHash, Label

_IN_CHUNK = 500


def content_hash(audio: Audio) -> str:
    """SHA-256 of the 16-bit PCM signal, its rate and channel count.

    It ignores the container and its metadata, so the same samples in a
    metadata-stripped WAV or a FLAC copy hash alike.
    """
    h = hashlib.sha256(b"guardian-pcm16-v1")
    h.update(struct.pack("<II", audio.sample_rate, audio.channels))
    h.update(audio.pcm16())
    return h.hexdigest()


def fingerprint_of(audio: Audio) -> fp.Fingerprint | None:
    """The robust fingerprint, or ``None`` for clips too short to carry one."""
    try:
        return fp.compute(audio.samples, audio.sample_rate)
    except ValueError:
        return None


@dataclass(frozen=True)
class RegistryMatch:
    """A registry row found for a clip, and how it was found."""

    label: Label
    method: str  # "manifest", "content_hash", "fingerprint" or "fingerprint-scaled"
    ber: float | None = None
    query: int | None = None
    """Which of several queries matched (:meth:`Registry.by_fingerprints`)."""
    change: tuple[str, float] | None = None
    """The speed or tempo change undone to find the clip, e.g. ``("speed", 1.05)``."""


class Registry:
    """Queries and inserts over the ``label`` and ``fingerprint_hash`` tables."""

    def add(self, session: Session, label: Label, fingerprint: fp.Fingerprint | None) -> None:
        session.add(label)
        session.flush()  # the index rows reference the label
        if fingerprint is not None:
            session.add_all(
                FingerprintHash(hash=h, label_id=label.id, frame=f)
                for h, f in fingerprint.index_keys()
            )
        session.flush()

    def by_manifest_id(self, session: Session, manifest_id: str) -> Label | None:
        return session.exec(select(Label).where(Label.manifest_id == manifest_id)).first()

    def by_content_hash(self, session: Session, digest: str) -> Label | None:
        stmt = select(Label).where(Label.content_sha256 == digest).order_by(col(Label.created_at))
        return session.exec(stmt).first()

    def by_fingerprint(self, session: Session, query: fp.Fingerprint) -> RegistryMatch | None:
        """Exact sub-fingerprint hits, votes by time offset, then a bit-error check."""
        return self.by_fingerprints(session, [query])

    def by_scaled_fingerprint(self, session: Session, audio: Audio) -> RegistryMatch | None:
        """The same search for a clip changed in speed or tempo by up to 10 %: one
        query per factor of ``fingerprint.SCALES`` (:func:`fingerprint.scaled`)."""
        try:
            variants = fp.scaled(audio.samples, audio.sample_rate)
        except ValueError:
            return None
        found = self.by_fingerprints(session, [v.fingerprint for v in variants])
        if found is None or found.query is None:
            return found
        v = variants[found.query]
        return replace(found, method="fingerprint-scaled", change=(v.change, v.factor))

    def by_fingerprints(
        self, session: Session, queries: Sequence[fp.Fingerprint]
    ) -> RegistryMatch | None:
        """The best match of any of ``queries``, whose index look-ups share one pass."""
        keys = [q.index_keys() for q in queries]
        postings: dict[int, list[tuple[str, int]]] = {}
        values = sorted({h for k in keys for h, _ in k})
        for i in range(0, len(values), _IN_CHUNK):
            chunk = values[i : i + _IN_CHUNK]
            rows = session.exec(
                select(FingerprintHash.hash, FingerprintHash.label_id, FingerprintHash.frame).where(
                    col(FingerprintHash.hash).in_(chunk)
                )
            ).all()
            for h, label_id, ref_frame in rows:
                postings.setdefault(h, []).append((label_id, ref_frame))
        cache: dict[str, tuple[Label, fp.Fingerprint]] = {}

        def load(label_id: str) -> fp.Fingerprint:
            if label_id not in cache:
                row = session.get(Label, label_id)
                if row is None:  # the foreign key makes this unreachable
                    raise LookupError(label_id)
                cache[label_id] = (row, fp.Fingerprint.from_bytes(row.fingerprint))
            return cache[label_id][1]

        best: tuple[int, str, fp.Match] | None = None
        for n, (query, pairs) in enumerate(zip(queries, keys, strict=True)):
            hits: dict[str, list[tuple[int, int]]] = {}
            for h, q_frame in pairs:
                for label_id, ref_frame in postings.get(h, ()):
                    hits.setdefault(label_id, []).append((q_frame, ref_frame))
            ranked = fp.rank_candidates(query, hits, load) if hits else []
            if ranked and (best is None or ranked[0][1].ber < best[2].ber):
                best = (n, *ranked[0])
        if best is None:
            return None
        n, label_id, match = best
        return RegistryMatch(cache[label_id][0], "fingerprint", ber=match.ber, query=n)

    def by_wm_tags(self, session: Session, tags: Sequence[int]) -> Sequence[Label]:
        """Labels whose watermark label tag is one of ``tags``."""
        if not tags:
            return []
        return session.exec(select(Label).where(col(Label.wm_tag).in_(list(tags)))).all()
