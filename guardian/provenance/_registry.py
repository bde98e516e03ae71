"""The provenance registry: every labeled clip, findable without its metadata."""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import BigInteger, ColumnElement, any_, bindparam, func, insert
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select

from guardian.audio import Audio
from guardian.provenance import fingerprint as fp
from guardian.store.models import FingerprintClip, FingerprintPosting, Label

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


def _one_of(session: Session, column: Mapped[Any], values: list[int]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``= ANY`` of one array parameter, so that the
    statement's text is the same for any number of values and the driver prepares it."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY  # 36 ms of import, PostgreSQL only

        return column == any_(bindparam("values", values, type_=ARRAY(BigInteger)))
    return column.in_(values)


def _postings(session: Session, hashes: list[int]) -> npt.NDArray[np.int64]:
    """The ``(hash, clip, frame)`` index rows of ``hashes``, one row each.

    A large registry returns thousands of rows per query, mostly chance hits. PostgreSQL
    sends them as three arrays in one row: an object per row would cost more than the
    vote, and the allocations would wake Python's garbage collector mid-query.
    """
    p = FingerprintPosting
    if session.get_bind().dialect.name == "postgresql":
        stmt = select(
            func.array_agg(p.hash), func.array_agg(p.clip), func.array_agg(p.frame)
        ).where(_one_of(session, col(p.hash), hashes))
        columns = session.connection().execute(stmt).one()
        return np.array([c or [] for c in columns], dtype=np.int64).T
    rows: list[Sequence[Any]] = []
    for i in range(0, len(hashes), _IN_CHUNK):
        chunk = hashes[i : i + _IN_CHUNK]
        rows += session.connection().execute(
            select(p.hash, p.clip, p.frame).where(col(p.hash).in_(chunk))
        )
    flat = itertools.chain.from_iterable(rows)
    return np.fromiter(flat, np.int64, 3 * len(rows)).reshape(-1, 3)


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
        session.flush()  # the clip row references the label
        if fingerprint is not None:
            clip = FingerprintClip(label_id=label.id)
            session.add(clip)
            session.flush()  # numbers the clip; the index rows go straight to the database
            rows = [{"hash": h, "clip": clip.n, "frame": f} for h, f in fingerprint.index_keys()]
            if rows:
                session.connection().execute(insert(FingerprintPosting), rows)

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
        postings = _postings(session, sorted({h for k in keys for h, _ in k}))
        voted = [fp.vote_postings(k, postings) for k in keys]  # per query, the clips to compare
        # one statement loads every candidate's fingerprint, the whole label only the winner's
        references = self._fingerprints(session, {clip for v in voted for clip, _ in v})
        best: tuple[int, int, fp.Match] | None = None
        for n, (query, candidates) in enumerate(zip(queries, voted, strict=True)):
            ranked = fp.check_candidates(query, candidates, lambda c: references[c][1])
            if ranked and (best is None or ranked[0][1].ber < best[2].ber):
                best = (n, *ranked[0])
        if best is None:
            return None
        n, clip, match = best
        label = session.get(Label, references[clip][0])
        if label is None:  # the foreign keys make this unreachable
            raise LookupError(references[clip][0])
        return RegistryMatch(label, "fingerprint", ber=match.ber, query=n)

    @staticmethod
    def _fingerprints(session: Session, clips: set[int]) -> dict[int, tuple[str, fp.Fingerprint]]:
        """Label id and stored fingerprint of each clip number, in one statement."""
        if not clips:
            return {}
        rows = session.exec(
            select(FingerprintClip.n, Label.id, Label.fingerprint)
            .join(Label, col(Label.id) == col(FingerprintClip.label_id))
            .where(_one_of(session, col(FingerprintClip.n), sorted(clips)))
        ).all()
        return {
            n: (label_id, fp.Fingerprint.from_bytes(data))
            for n, label_id, data in rows
            if n is not None
        }

    def by_wm_tags(self, session: Session, tags: Sequence[int]) -> Sequence[Label]:
        """Labels whose watermark label tag is one of ``tags``."""
        if not tags:
            return []
        return session.exec(select(Label).where(col(Label.wm_tag).in_(list(tags)))).all()
