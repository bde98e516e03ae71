"""How the provenance registry's look-ups scale with its size, on SQLite and PostgreSQL.

Usage::

    python benchmarks/registry_scale.py [--sizes 1000,10000,100000,1000000] \
        [--backends sqlite,postgresql] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/] \
        [--keep benchmarks/out/registry_scale] [--json docs/benchmarks/registry_scale.json]

For every size N and back end, one database holds N labeled clips:

* ``--refs`` real clips (speech from Piper and espeak-ng, 3-10 s), registered through
  ``Registry.add`` one by one, as labeling does (the online insert figure);
* N minus those, synthetic clips in the real format (a ``label`` row with its serialised
  fingerprint, its clip number and its ``fingerprint_posting`` rows from
  ``Fingerprint.index_keys``), bulk loaded: ``COPY`` on PostgreSQL, ``executemany`` in
  one transaction per batch on SQLite. Their statistics come from the real clips'
  fingerprints: each synthetic clip copies the duration and silent frames of a real
  clip, repeats the previous hash as often as real speech does, and draws every hash
  from a Markov chain over the 32 bits fitted to the real hashes (bit by bit, given the
  bits before; the order, 2 to 12, whose hashes meet held-out real ones as often as real
  clips meet each other). The report compares the chance that two hashes of different
  clips are equal in the real clips and in the model: that chance sets how many index
  rows a look-up reads.

The schema is the project's own (the Alembic migrations), and the look-ups are the
registry's own code: ``Registry.by_fingerprint`` for the fingerprint search and, for the
payload-led search, ``Registry.by_wm_tags`` alone and the whole ``assisted_lookup`` that
``verify`` runs (its detection is given the payload the label's watermark carries, with
the three least confident bits flipped as ``candidate_label_tags`` does: 8 tags).

Queries are real audio: each registered clip after an MP3 64 kbps round trip (must find
its own label), and unrelated real clips (other sentences of the same voices, and
non-speech; must find nothing). The machine is shared, so every query runs against all
sizes and back ends in turn (the order rotating per query) before the next query: the
ratios between sizes are measured under the same load. Before the queries, the
relations the look-ups read are read once into the operating system's cache (on
PostgreSQL with ``pg_prewarm``), as a deployment keeps them (docs/scaling.md);
``--no-prewarm`` leaves that out. One warm-up pass of queries runs first.

Databases are filled once per size into ``--keep`` (SQLite files, and one PostgreSQL
database per size whose name records the size); reruns reuse them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import math
import os
import random
import sqlite3
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fingerprint_robustness import Clip  # noqa: E402
from fingerprint_robustness import build_corpus as fingerprint_corpus  # noqa: E402
from sqlalchemy import Engine, make_url, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from guardian.audio import Audio, decode_bytes, encode_bytes  # noqa: E402
from guardian.provenance import Registry  # noqa: E402
from guardian.provenance import fingerprint as fpm  # noqa: E402
from guardian.store import Label, SigningKey, make_engine, migrate  # noqa: E402
from guardian.store.db import current_revision, head_revision  # noqa: E402
from guardian.store.models import KeyRole, KeyStatus  # noqa: E402

SEED = 20_261_206
CORPUS_VERSION = 1  # bump when the real clips' recipe changes
DATA_VERSION = 4  # bump when the synthetic recipe changes
BATCH = 5_000  # synthetic clips per bulk batch
SIGNER = "bench-signer"
DEFAULT_SIZES = "1000,10000,100000,1000000"


# --- real clips ---------------------------------------------------------------------


def _half_piper(i: int) -> str:
    return "piper" if i % 2 else "espeak"


def build_corpus(out: Path, n_refs: int, n_unrelated: int) -> tuple[list[Clip], list[Clip]]:
    """The real clips (the fingerprint benchmark's recipe, this benchmark's seed),
    synthesised once; later runs read the cached WAV files."""
    return fingerprint_corpus(
        out, n_refs, n_unrelated, seed=SEED, version=CORPUS_VERSION, unrelated_voice=_half_piper
    )


def load(clip: Clip) -> Audio:
    samples, rate = sf.read(clip.path, dtype="float32", always_2d=True)
    return Audio(samples, int(rate))


def mp3_64k(audio: Audio) -> Audio:
    return decode_bytes(encode_bytes(audio, "mp3", bitrate_kbps=64))


def ref_label_id(i: int) -> str:
    return "lbl_" + hashlib.sha256(f"ref-{i}".encode()).hexdigest()[:20]


# --- statistics of real fingerprints and the synthetic model ------------------------


@dataclass
class Model:
    """What the synthetic fingerprints copy from the real ones."""

    templates: list[np.ndarray]  # silent-frame masks (True: silent), one per real clip
    p_repeat: float  # chance a non-silent frame repeats the previous hash
    order: int  # bits of context of the Markov chain over the 32 bits
    p_one: list[np.ndarray]  # per bit (31 first): P(bit = 1 | the `order` bits before)


def _bits(hashes: np.ndarray) -> np.ndarray:
    """(n, 32) bits, column 0 the most significant (bit 31: the lowest band pair)."""
    return np.unpackbits(hashes.astype(">u4").view(np.uint8).reshape(-1, 4), axis=1)


def _contexts(bits: np.ndarray, k: int, order: int) -> np.ndarray:
    ctx = np.zeros(len(bits), dtype=np.int64)
    for j in range(max(0, k - order), k):
        ctx = (ctx << 1) | bits[:, j]
    return ctx


def fit_model(fps: list[fpm.Fingerprint], order: int) -> Model:
    templates = [fp.hashes == fpm.SILENT_HASH for fp in fps]
    repeats = loud = 0
    distinct = []
    for fp in fps:
        h = fp.hashes
        pairs = (h[1:] != fpm.SILENT_HASH) & (h[:-1] != fpm.SILENT_HASH)
        loud += int(pairs.sum())
        repeats += int((pairs & (h[1:] == h[:-1])).sum())
        prev = np.concatenate([[fpm.SILENT_HASH], h[:-1]])
        distinct.append(h[(h != fpm.SILENT_HASH) & (h != prev)])
    bits = _bits(np.concatenate(distinct)).astype(np.int64)
    p_one = []
    for k in range(32):
        ctx = _contexts(bits, k, order)
        size = 1 << min(k, order)
        ones = np.bincount(ctx, weights=bits[:, k], minlength=size)
        seen = np.bincount(ctx, minlength=size)
        p_one.append((ones + 0.5) / (seen + 1.0))  # Jeffreys prior: unseen contexts 1/2
    return Model(templates, repeats / max(loud, 1), order, p_one)


def model_probability(model: Model, hashes: np.ndarray) -> np.ndarray:
    """P(h) of each hash under the model."""
    bits = _bits(hashes).astype(np.int64)
    prob = np.ones(len(bits))
    for k in range(32):
        p = model.p_one[k][_contexts(bits, k, model.order)]
        prob *= np.where(bits[:, k] == 1, p, 1 - p)
    return prob


def model_collision(model: Model) -> float:
    """Chance that two independent draws of the model are equal (sum of P(h)^2)."""
    w = np.ones(1)  # summed squared probability per context
    for k in range(32):
        p = model.p_one[k]
        mask = (1 << min(k + 1, model.order)) - 1
        nw = np.zeros(mask + 1)
        for ctx in range(len(w)):
            nw[((ctx << 1) | 1) & mask] += w[ctx] * p[ctx] ** 2
            nw[(ctx << 1) & mask] += w[ctx] * (1 - p[ctx]) ** 2
        w = nw
    return float(w.sum())


def real_collision(fps: list[fpm.Fingerprint]) -> tuple[float, int, int]:
    """Share of equal index hashes among pairs from different real clips."""
    counts: dict[int, dict[int, int]] = {}
    for i, fp in enumerate(fps):
        for h, _ in fp.index_keys():
            per = counts.setdefault(h, {})
            per[i] = per.get(i, 0) + 1
    total = sum(len(fp.index_keys()) for fp in fps)
    same_clip = sum(len(fp.index_keys()) ** 2 for fp in fps)
    equal = 0
    for per in counts.values():
        s = sum(per.values())
        equal += s * s - sum(v * v for v in per.values())
    pairs = total * total - same_clip
    return equal / pairs, equal // 2, pairs // 2


def synth_hashes(model: Model, rng: np.random.Generator, n: int) -> np.ndarray:
    bits = np.empty((n, 32), dtype=np.uint8)
    ctx = np.zeros(n, dtype=np.int32)
    for k in range(32):
        if k:
            ctx = ((ctx << 1) | bits[:, k - 1]) & ((1 << min(k, model.order)) - 1)
        bits[:, k] = rng.random(n, dtype=np.float32) < model.p_one[k].astype(np.float32)[ctx]
    return np.packbits(bits, axis=1).view(">u4")[:, 0].astype(np.uint32)


def synth_batch(model: Model, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """``count`` synthetic fingerprints' hashes (SILENT_HASH where the template is silent)."""
    picks = rng.integers(0, len(model.templates), count)
    masks = [model.templates[i] for i in picks]
    lengths = [len(m) for m in masks]
    flat = synth_hashes(model, rng, sum(lengths))
    repeat = rng.random(len(flat)) < model.p_repeat
    out = []
    start = 0
    for mask, n in zip(masks, lengths, strict=True):
        rep = repeat[start : start + n].copy()
        rep[0] = False
        # a repeated frame copies the last frame before it that is not a repeat
        source = np.maximum.accumulate(np.where(rep, 0, np.arange(n)))
        h = flat[start : start + n][source]
        h[mask] = fpm.SILENT_HASH
        out.append(h)
        start += n
    return out


def indexed(hashes: np.ndarray) -> np.ndarray:
    """Which hash values the index keeps (``fingerprint._indexed``, vectorised)."""
    return (((hashes.astype(np.uint64) * 2654435761) & 0xFFFFFFFF) >> 30) == 0


def index_rows(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Fingerprint.index_keys`` of one fingerprint, vectorised: (hashes, frames)."""
    prev = np.concatenate([[fpm.SILENT_HASH], hashes[:-1]]).astype(np.uint32)
    keep = (hashes != fpm.SILENT_HASH) & (hashes != prev) & indexed(hashes)
    frames = np.flatnonzero(keep)
    return hashes[frames], frames


# --- databases ----------------------------------------------------------------------


@dataclass
class Target:
    backend: str  # "sqlite" or "postgresql"
    size: int
    url: str
    engine: Engine | None = None


def target_for(backend: str, size: int, keep: Path, pg_url: str) -> Target:
    if backend == "sqlite":
        return Target(backend, size, f"sqlite:///{keep / f'registry-{size}.db'}")
    base = make_url(pg_url)
    return Target(
        backend, size, base.set(database=f"guardian_registry_{size}").render_as_string(False)
    )


def _assertion_json(label_id: str, rng: random.Random) -> str:
    return json.dumps(
        {
            "generator": "guardian",
            "label_id": label_id,
            "purpose": rng.choice(["narration", "dubbing", "accessibility", None]),
            "requester": "bench",
            "voice_id": None,
            "consent_id": None,
            "created": "2026-12-06T00:00:00+00:00",
            "extra": {"watermark": {"embedded": True, "model_id": "guardian-wm-v15"}},
        },
        sort_keys=True,
    )


def _drop_create_db(t: Target) -> None:
    if t.backend == "sqlite":
        path = Path(make_url(t.url).database or "")
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
        return
    import psycopg

    url = make_url(t.url)
    name = url.database
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _marker(keep: Path, t: Target) -> Path:
    return keep / f"fill-{t.backend}-{t.size}.json"


def fill(
    t: Target, keep: Path, model: Model, refs: list[tuple[str, Audio, fpm.Fingerprint]], spec: dict
) -> dict[str, Any]:
    """Fill the database once; a marker file with the same recipe and schema revision
    (``spec``) means it is already there, and any other is filled again."""
    marker = _marker(keep, t)
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved.get("spec") == spec:
            t.engine = make_engine(t.url)
            return dict(saved["fill"])
    marker.unlink(missing_ok=True)
    _drop_create_db(t)
    engine = make_engine(t.url)
    migrate(engine)
    with Session(engine) as s:
        s.add(
            SigningKey(
                kid=SIGNER,
                role=KeyRole.SIGNER,
                status=KeyStatus.ACTIVE,
                public_pem="-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
                created_at=dt.datetime.now(dt.UTC),
            )
        )
        s.commit()
    n_synth = t.size - len(refs)
    if n_synth < 0:
        raise SystemExit(f"size {t.size} is smaller than --refs {len(refs)}")
    rng = np.random.default_rng([SEED, t.size])
    prng = random.Random(SEED + t.size)
    # The bulk load goes in without the postings' primary key (PostgreSQL: built after
    # the load; SQLite: its rows are copied in key order into the table without rowids)
    # and without foreign-key checks.
    if t.backend == "postgresql":
        with engine.begin() as conn:
            conn.execute(
                text("ALTER TABLE fingerprint_posting DROP CONSTRAINT fingerprint_posting_pkey")
            )
    started = time.perf_counter()
    rows = 0
    writer = _PgWriter(engine) if t.backend == "postgresql" else _SqliteWriter(t.url)
    try:
        for first in range(0, n_synth, BATCH):
            count = min(BATCH, n_synth - first)
            labels, hashes = _synthetic_rows(model, rng, prng, first, count)
            writer.write(labels, hashes)
            rows += len(hashes[0])
            if (first // BATCH) % 20 == 0:
                done = first + count
                el = time.perf_counter() - started
                print(
                    f"  {t.backend} {t.size}: {done}/{n_synth} clips, {el:.0f} s", file=sys.stderr
                )
        loaded = time.perf_counter() - started
        ix_started = time.perf_counter()
        writer.finish(n_synth)
        indexed = time.perf_counter() - ix_started
    finally:
        writer.close()
    t.engine = engine
    _vacuum(t)
    # The real clips go in as labeling puts them: one Registry.add and commit per clip.
    registry = Registry()
    add_times = []
    for i, (label_id, audio, fp) in enumerate(refs):
        with Session(engine) as s:
            t0 = time.perf_counter()
            registry.add(s, _label(label_id, audio, fp, i), fp)
            s.commit()
            add_times.append(time.perf_counter() - t0)
    result = {
        "synthetic_clips": n_synth,
        "index_rows": rows + sum(len(fp.index_keys()) for _, _, fp in refs),
        "bulk_seconds": round(loaded, 2),
        "bulk_clips_per_s": round(n_synth / loaded, 1) if loaded else None,
        "bulk_index_rows_per_s": round(rows / loaded) if loaded else None,
        "index_build_seconds": round(indexed, 2),
        "registry_add_ms_p50": _ms(add_times, 50),
        "registry_add_ms_p99": _ms(add_times, 99),
        "registry_add_clips_per_s": round(len(add_times) / sum(add_times), 1),
    }
    marker.write_text(json.dumps({"spec": spec, "fill": result}, indent=1))
    t.engine = engine
    return result


def _vacuum(t: Target) -> None:
    """Statistics and, on PostgreSQL, the visibility map (index-only scans need it), as
    autovacuum leaves them after a bulk load."""
    assert t.engine is not None
    if t.backend == "postgresql":
        with t.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) label, fingerprint_clip, fingerprint_posting"))
    else:
        with t.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def _label(label_id: str, audio: Audio, fp: fpm.Fingerprint, i: int) -> Label:
    from guardian.provenance import content_hash
    from guardian.watermark import label_tag

    tag = label_tag(label_id)
    return Label(
        id=label_id,
        manifest_id=f"urn:c2pa:{uuid.UUID(int=random.Random(i).getrandbits(128))}",
        content_sha256=content_hash(audio),
        fingerprint=fp.to_bytes(),
        created_at=dt.datetime.now(dt.UTC),
        duration_s=audio.duration,
        sample_rate=audio.sample_rate,
        channels=audio.channels,
        format="wav",
        signer_kid=SIGNER,
        purpose="narration",
        assertion_json=_assertion_json(label_id, random.Random(i)),
        wm_payload=(0x5 << 12) | tag,
        wm_tag=tag,
        wm_model="guardian-wm-v15",
    )


_LABEL_COLUMNS = (
    "id, manifest_id, content_sha256, fingerprint, created_at, duration_s, sample_rate, "
    "channels, format, signer_kid, purpose, voice_id, consent_id, assertion_json, "
    "wm_payload, wm_tag, wm_model"
)


def _synthetic_rows(
    model: Model, rng: np.random.Generator, prng: random.Random, first: int, count: int
) -> tuple[list[tuple[Any, ...]], tuple[np.ndarray, list[tuple[int, str]], np.ndarray, np.ndarray]]:
    from guardian.watermark import label_tag

    created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    labels = []
    all_h, all_f, owners = [], [], []
    for j, hashes in enumerate(synth_batch(model, rng, count)):
        label_id = "lbl_" + hashlib.sha256(f"syn-{first + j}".encode()).hexdigest()[:20]
        fp = fpm.Fingerprint(hashes=hashes, hop_seconds=fpm._HOP / fpm._RATE)
        tag = label_tag(label_id)
        labels.append(
            (
                label_id,
                f"urn:c2pa:{uuid.UUID(int=prng.getrandbits(128))}",
                hashlib.sha256(label_id.encode()).hexdigest(),
                fp.to_bytes(),
                created + dt.timedelta(seconds=first + j),
                round(fp.duration_seconds + 0.4, 3),
                48000,
                1,
                "wav",
                SIGNER,
                "narration",
                None,
                None,
                _assertion_json(label_id, prng),
                (0x5 << 12) | tag,
                tag,
                "guardian-wm-v15",
            )
        )
        h, f = index_rows(hashes)
        all_h.append(h)
        all_f.append(f)
        owners.append(np.full(len(h), first + j + 1))  # clip numbers count from 1
    clips = [(first + j + 1, row[0]) for j, row in enumerate(labels)]  # (n, label id)
    return labels, (
        np.concatenate(all_h).astype(np.int64),
        clips,
        np.concatenate(owners),
        np.concatenate(all_f),
    )


class _PgWriter:
    def __init__(self, engine: Engine) -> None:
        self._raw = engine.raw_connection()
        self._conn = self._raw.driver_connection
        self._conn.execute("SET session_replication_role = replica")  # no FK triggers

    def write(self, labels: list[tuple[Any, ...]], hashes: tuple) -> None:
        values, clip_rows, clips, frames = hashes
        cur = self._conn.cursor()
        with cur.copy(f"COPY label ({_LABEL_COLUMNS}) FROM STDIN") as copy:
            for row in labels:
                copy.write_row(row)
        with cur.copy("COPY fingerprint_clip (n, label_id) FROM STDIN") as copy:
            for clip_row in clip_rows:
                copy.write_row(clip_row)
        buf = io.StringIO()
        buf.writelines(
            f"{h}\t{c}\t{f}\n"
            for h, c, f in zip(values.tolist(), clips.tolist(), frames.tolist(), strict=True)
        )
        with cur.copy("COPY fingerprint_posting (hash, clip, frame) FROM STDIN") as copy:
            copy.write(buf.getvalue())
        self._conn.commit()

    def finish(self, clips: int) -> None:
        """The primary key the migration defines, and the clip numbers' sequence past the
        bulk-loaded ones, so that ``Registry.add`` continues after them."""
        self._conn.execute("ALTER TABLE fingerprint_posting ADD PRIMARY KEY (hash, clip, frame)")
        self._conn.execute(
            "SELECT setval(pg_get_serial_sequence('fingerprint_clip', 'n'), %s)", (max(clips, 1),)
        )
        self._conn.commit()

    def close(self) -> None:
        self._raw.close()


class _SqliteWriter:
    def __init__(self, url: str) -> None:
        self._conn = sqlite3.connect(make_url(url).database or "")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=OFF")
        self._conn.execute("PRAGMA cache_size=-1000000")  # 1 GB for the sorted copy
        self._conn.execute("CREATE TEMP TABLE posting_load (hash, clip, frame)")

    def write(self, labels: list[tuple[Any, ...]], hashes: tuple) -> None:
        values, clip_rows, clips, frames = hashes
        marks = ", ".join("?" * 17)
        rows = [(*r[:4], r[4].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[5:]) for r in labels]
        with self._conn:
            self._conn.executemany(f"INSERT INTO label ({_LABEL_COLUMNS}) VALUES ({marks})", rows)
            self._conn.executemany(
                "INSERT INTO fingerprint_clip (n, label_id) VALUES (?, ?)", clip_rows
            )
            self._conn.executemany(
                "INSERT INTO posting_load VALUES (?, ?, ?)",
                zip(values.tolist(), clips.tolist(), frames.tolist(), strict=True),
            )

    def finish(self, clips: int) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO fingerprint_posting SELECT hash, clip, frame FROM posting_load "
                "ORDER BY hash, clip, frame"
            )
            self._conn.execute("DROP TABLE posting_load")

    def close(self) -> None:
        self._conn.close()


def disk_sizes(t: Target) -> dict[str, Any]:
    """Bytes of the registry's tables and indexes, and of the whole database."""
    assert t.engine is not None
    out: dict[str, Any] = {}
    with t.engine.connect() as conn:
        if t.backend == "postgresql":
            rows = conn.execute(
                text(
                    "SELECT c.relname, c.relkind, pg_relation_size(c.oid) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                    "AND c.relkind IN ('r', 'i', 't')"
                )
            ).all()
            total = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        else:
            try:
                rows = conn.execute(
                    text(
                        "SELECT d.name, m.type, SUM(d.pgsize) FROM dbstat d "
                        "JOIN sqlite_master m ON m.name = d.name GROUP BY d.name"
                    )
                ).all()
            except Exception:  # dbstat not compiled in
                rows = []
            total = Path(make_url(t.url).database or "").stat().st_size
        seconds = conn.execute(text("SELECT sum(duration_s) FROM label")).scalar() or 0.0
    tables = {"label", "fingerprint_clip", "fingerprint_posting"}
    for name, kind, size in rows:
        kind = {"r": "table", "i": "index", "t": "table"}.get(kind, kind)
        if any(tb in name for tb in tables):
            out.setdefault(kind, {})[name] = int(size)
    out["index_bytes"] = sum(out.get("index", {}).values())
    # the B-tree the look-up reads: PostgreSQL's primary key, SQLite's table without rowids
    postings = out.get("index", {}).get("fingerprint_posting_pkey") or out.get("table", {}).get(
        "fingerprint_posting", 0
    )
    out["postings_index_bytes"] = postings
    out["audio_hours"] = round(float(seconds) / 3600, 1)
    out["postings_index_bytes_per_hour"] = round(postings / (seconds / 3600)) if seconds else None
    out["database_bytes"] = int(total or 0)
    return out


def prewarm(t: Target) -> float:
    """Read the relations the look-ups use into the operating system's cache, as a
    running deployment holds them; returns the seconds it took."""
    assert t.engine is not None
    started = time.perf_counter()
    with t.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if t.backend == "postgresql":
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
            for rel in (
                "fingerprint_posting_pkey",
                "fingerprint_clip",
                "fingerprint_clip_pkey",
                "label",
                "label_pkey",
                "ix_label_wm_tag",
            ):
                conn.execute(text("SELECT pg_prewarm(:rel, 'read')"), {"rel": rel})
        else:
            conn.execute(text("SELECT count(*) FROM fingerprint_posting"))
            conn.execute(text("SELECT count(*), sum(length(fingerprint)) FROM label"))
            conn.execute(text("SELECT count(*) FROM fingerprint_clip"))
    return round(time.perf_counter() - started, 1)


# --- queries ------------------------------------------------------------------------


@dataclass
class Query:
    kind: str  # "registered_mp3_64k" or "unrelated"
    key: str
    expect: str | None  # the label it must find, None for unrelated
    fp: fpm.Fingerprint | None
    tags_detection: Any


def _detection(label_id: str | None, rng: random.Random) -> Any:
    from guardian.watermark import Detection, Payload

    if label_id is None:  # an unrelated clip read as a (false) watermark: a random payload
        payload = Payload(rng.randrange(1 << 16))
    else:
        payload = Payload.for_label(deployment=0x5, label_id=label_id)
    confidence = [rng.uniform(0.5, 1.0) for _ in range(16)]
    return Detection(
        detected=True,
        score=1.0,
        threshold=0.5,
        payload=payload,
        bits=payload.bits(),
        bit_confidence=confidence,
    )


def run_queries(
    targets: list[Target], queries: list[Query], rounds: int, assisted_every: int
) -> dict[tuple[str, int], dict[str, Any]]:
    from guardian.app._watermarking import assisted_lookup
    from guardian.watermark import candidate_label_tags

    registry = Registry()
    sessions = {(t.backend, t.size): Session(t.engine) for t in targets}
    times: dict[tuple[str, int], dict[str, list[float]]] = {
        k: {"fingerprint": [], "wm_tags": [], "assisted": []} for k in sessions
    }
    outcome: dict[tuple[str, int], dict[str, Any]] = {
        k: {
            "found": 0,
            "missed": [],
            "wrong": [],
            "assisted_found": 0,
            "assisted_wrong": [],
            "assisted_tried": 0,
        }
        for k in sessions
    }

    def one(t: Target, q: Query, record: bool, with_assisted: bool) -> None:
        k = (t.backend, t.size)
        s = sessions[k]
        t0 = time.perf_counter()
        found = registry.by_fingerprint(s, q.fp) if q.fp is not None else None
        t1 = time.perf_counter()
        tags = candidate_label_tags(q.tags_detection.bits, q.tags_detection.bit_confidence)
        t2 = time.perf_counter()
        registry.by_wm_tags(s, tags)
        t3 = time.perf_counter()
        assisted = assisted_lookup(s, registry, q.tags_detection, q.fp) if with_assisted else None
        t4 = time.perf_counter()
        got = found.label.id if found is not None else None
        a_got = assisted.label.id if assisted is not None else None
        s.rollback()  # end the read transaction, as a request's session does
        s.expunge_all()
        if not record:
            return
        times[k]["fingerprint"].append(t1 - t0)
        times[k]["wm_tags"].append(t3 - t2)
        if with_assisted:
            times[k]["assisted"].append(t4 - t3)
        o = outcome[k]
        if got is not None and got != q.expect:
            o["wrong"].append(q.key)
        elif q.expect is not None and got == q.expect:
            o["found"] += 1
        elif q.expect is not None:
            o["missed"].append(q.key)
        if a_got is not None and a_got != q.expect:
            o["assisted_wrong"].append(q.key)
        elif q.expect is not None and a_got == q.expect:
            o["assisted_found"] += 1
        if with_assisted and q.expect is not None:
            o["assisted_tried"] += 1

    order = list(targets)
    for q in queries[: min(10, len(queries))]:  # warm-up: caches, plans, connections
        for t in order:
            one(t, q, record=False, with_assisted=False)
    for r in range(rounds):
        for n, q in enumerate(queries):
            shift = (n + r) % len(order)
            for t in order[shift:] + order[:shift]:
                one(t, q, record=True, with_assisted=r == 0 and n % assisted_every == 0)
        print(f"  query round {r + 1}/{rounds} done", file=sys.stderr)
    for s in sessions.values():
        s.close()
    results = {}
    for k, ts in times.items():
        o = outcome[k]
        registered = sum(1 for q in queries if q.expect is not None) * rounds
        results[k] = {
            **{f"{name}_ms_p50": _ms(v, 50) for name, v in ts.items()},
            **{f"{name}_ms_p99": _ms(v, 99) for name, v in ts.items()},
            "recall_mp3_64k": round(o["found"] / registered, 4) if registered else None,
            "missed": sorted(set(o["missed"])),
            "wrong_matches": len(o["wrong"]),
            "wrong_keys": sorted(set(o["wrong"])),
            "assisted_recall_mp3_64k": (
                round(o["assisted_found"] / o["assisted_tried"], 4) if o["assisted_tried"] else None
            ),
            "assisted_wrong_matches": len(o["assisted_wrong"]),
            "samples": len(ts["fingerprint"]),
            "assisted_samples": len(ts["assisted"]),
        }
    return results


def _ms(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    return round(float(np.percentile(np.array(values) * 1000, pct)), 3)


# --- report -------------------------------------------------------------------------


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Registry at scale",
        "",
        f"`{report['command']}`, {report['date']}, {report['cores']} cores (load average "
        f"{report['load_average_1min'][0]} before the queries, "
        f"{report['load_average_1min'][1]} after). Each database holds N labeled clips: "
        f"{report['refs']} real ones registered with `Registry.add`, the rest synthetic "
        "in the real format, bulk loaded. Queries: each real clip after MP3 64 kbps "
        f"({report['refs']}) and {report['unrelated']} unrelated real clips, "
        f"{report['rounds']} round(s), every query against every database in turn"
        + (
            ", the look-ups' relations read into the cache first (`prewarm`)."
            if report.get("prewarm")
            else ", without reading the relations into the cache first."
        ),
        "",
        "| back end | N | index rows | fingerprint p50 / p99 ms | `by_wm_tags` p50 / p99 ms "
        "| assisted p50 / p99 ms | recall MP3 64k | wrong matches | postings index "
        "| per hour of audio | all indexes | database | bulk clips/s | `Registry.add` clips/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        q, f, d = row["queries"], row["fill"], row["disk"]
        lines.append(
            f"| {row['backend']} | {row['size']:,} | {f['index_rows']:,} "
            f"| {q['fingerprint_ms_p50']} / {q['fingerprint_ms_p99']} "
            f"| {q['wm_tags_ms_p50']} / {q['wm_tags_ms_p99']} "
            f"| {q['assisted_ms_p50']} / {q['assisted_ms_p99']} "
            f"| {q['recall_mp3_64k']} | {q['wrong_matches']} + {q['assisted_wrong_matches']} "
            f"| {_fmt_bytes(d['postings_index_bytes'])} "
            f"| {_fmt_bytes(d['postings_index_bytes_per_hour'] or 0)} "
            f"| {_fmt_bytes(d['index_bytes'])} | {_fmt_bytes(d['database_bytes'])} "
            f"| {f['bulk_clips_per_s']} | {f['registry_add_clips_per_s']} |"
        )
    lines += [
        "",
        "The fingerprint look-up against the smallest size, in the same run:",
        "",
        "| back end | N | p99 / p99 at smallest N | p50 / p50 at smallest N |",
        "|---|---|---|---|",
    ]
    smallest: dict[str, dict[str, Any]] = {}
    for row in report["results"]:
        q = row["queries"]
        base = smallest.setdefault(row["backend"], q)
        lines.append(
            f"| {row['backend']} | {row['size']:,} "
            f"| x{q['fingerprint_ms_p99'] / base['fingerprint_ms_p99']:.2f} "
            f"| x{q['fingerprint_ms_p50'] / base['fingerprint_ms_p50']:.2f} |"
        )
    lines += ["", "## Bars", ""]
    for bar in report["bars"]:
        lines.append(f"- {bar['name']}: {bar['value']} — **{'met' if bar['met'] else 'missed'}**")
    lines += ["", "## Notes", ""]
    lines += [f"- {n}" for n in report["notes"]]
    stats = report["statistics"]
    lines += [
        "",
        "## Statistics of the fill",
        "",
        f"- Real clips: {stats['real_clips']} registered (fitted) and "
        f"{stats['held_out_clips']} unrelated (checked); {stats['frames_per_s']} "
        f"sub-fingerprints and {stats['index_keys_per_s']} index rows per second of audio, "
        f"silent frames {stats['silent_share']}, repeated hashes {stats['repeat_share']}. "
        f"Synthetic clips: {stats['synthetic_index_keys_per_s']} index rows per second.",
        f"- Chance that index hashes of two real clips are equal: "
        f"{stats['collision_real']:.3g} ({stats['collision_real_pairs']} equal pairs among "
        f"{stats['collision_pairs']:,}); uniform indexed hashes (a quarter of all): "
        f"{4 / 2**32:.3g}. "
        f"Chance that a synthetic index hash equals a held-out real one, by Markov order: "
        + ", ".join(f"{o}: {v['held_out_cross']:.3g}" for o, v in stats["by_order"].items())
        + f". The fill uses order {stats['markov_order']}, the closest; even so a look-up reads "
        f"about {stats['collision_real'] / stats['collision_model_held_out']:.1f} times fewer "
        "unrelated index rows than it would in a registry of real clips.",
    ]
    return "\n".join(lines) + "\n"


def choose_model(
    fps: list[fpm.Fingerprint], held_out: list[fpm.Fingerprint]
) -> tuple[Model, dict[str, Any]]:
    """The Markov order whose hashes meet held-out real hashes as often as real clips
    meet each other; fitted on the registered clips, checked on the unrelated ones."""
    coll, equal, pairs = real_collision(fps + held_out)
    held = np.array([h for fp in held_out for h, _ in fp.index_keys()], dtype=np.uint32)
    by_order = {}
    best: tuple[float, Model] | None = None
    for order in (2, 4, 6, 8, 10, 12):
        model = fit_model(fps, order)
        draws = synth_hashes(model, np.random.default_rng(order), 200_000)
        p_indexed = float(np.mean(indexed(draws)))
        cross = float(np.mean(model_probability(model, held))) / p_indexed
        by_order[order] = {"held_out_cross": cross, "self": model_collision(model)}
        gap = abs(math.log(cross / coll)) if coll > 0 else float(order)
        if best is None or gap < best[0]:
            best = (gap, model)
    assert best is not None
    model = best[1]
    seconds = sum(fp.duration_seconds for fp in fps)
    sample = synth_batch(model, np.random.default_rng(1), 500)
    for h in sample[:20]:  # the vectorised index rows are index_keys' own
        got = list(zip(*(a.tolist() for a in index_rows(h)), strict=True))
        assert got == fpm.Fingerprint(h, fpm._HOP / fpm._RATE).index_keys()
    synth_keys = sum(len(index_rows(h)[0]) for h in sample)
    synth_seconds = sum(len(h) for h in sample) * fpm._HOP / fpm._RATE
    stats = {
        "real_clips": len(fps),
        "held_out_clips": len(held_out),
        "frames_per_s": round(sum(len(fp.hashes) for fp in fps) / seconds, 2),
        "index_keys_per_s": round(sum(len(fp.index_keys()) for fp in fps) / seconds, 2),
        "silent_share": round(float(np.mean(np.concatenate(model.templates))), 4),
        "repeat_share": round(model.p_repeat, 4),
        "collision_real": coll,
        "collision_real_pairs": equal,
        "collision_pairs": pairs,
        "markov_order": model.order,
        "by_order": by_order,
        "collision_model_held_out": by_order[model.order]["held_out_cross"],
        "collision_model": by_order[model.order]["self"],
        "synthetic_index_keys_per_s": round(synth_keys / synth_seconds, 2),
    }
    return model, stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated N")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--sqlite-sizes", default=None, help="SQLite's sizes (default: --sizes)")
    ap.add_argument(
        "--pg-url",
        default=os.environ.get(
            "GUARDIAN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/"
        ),
    )
    ap.add_argument("--keep", type=Path, default=ROOT / "benchmarks" / "out" / "registry_scale")
    ap.add_argument("--refs", type=int, default=60, help="real registered clips")
    ap.add_argument("--unrelated", type=int, default=60, help="real unrelated clips")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--assisted-every",
        type=int,
        default=12,
        help="run the whole assisted look-up on every k-th query, first round only (it "
        "compares every label of the candidate tags in full: seconds per query at 1M)",
    )
    ap.add_argument("--note", action="append", default=[], help="a line for the report")
    ap.add_argument("--fill-only", action="store_true", help="fill the databases and stop")
    ap.add_argument(
        "--no-prewarm",
        action="store_true",
        help="query without first reading the look-ups' relations into the cache",
    )
    ap.add_argument(
        "--json", type=Path, default=ROOT / "docs" / "benchmarks" / "registry_scale.json"
    )
    ap.add_argument("--md", type=Path, default=None, help="markdown report (default: --json's .md)")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.keep.mkdir(parents=True, exist_ok=True)

    refs_c, unrel_c = build_corpus(args.keep, args.refs, args.unrelated)
    refs = []
    for i, c in enumerate(refs_c):
        audio = load(c)
        refs.append((ref_label_id(i), audio, fpm.compute(audio.samples, audio.sample_rate)))
    real_fps = [fp for _, _, fp in refs]
    held_out = [_fp(load(c)) for c in unrel_c]
    held_fps = [fp for fp in held_out if fp is not None]
    model, stats = choose_model(real_fps, held_fps)
    print(json.dumps(stats), file=sys.stderr)
    spec = {
        "version": DATA_VERSION,
        "order": model.order,
        "seed": SEED,
        "refs": args.refs,
        "fingerprint": fpm.FINGERPRINT_VERSION,
        "schema": head_revision(),
    }
    per_backend = {b: sizes for b in backends}
    if args.sqlite_sizes and "sqlite" in per_backend:
        per_backend["sqlite"] = sorted(int(s) for s in args.sqlite_sizes.split(","))
    targets = [target_for(b, n, args.keep, args.pg_url) for b in backends for n in per_backend[b]]
    fills = {}
    for t in targets:
        print(f"fill {t.backend} N={t.size}", file=sys.stderr)
        fills[(t.backend, t.size)] = fill(t, args.keep, model, refs, spec)
        print(f"  {fills[(t.backend, t.size)]}", file=sys.stderr)
    if args.fill_only:
        return 0

    prng = random.Random(SEED)
    queries = []
    for i, (label_id, audio, _) in enumerate(refs):
        coded = mp3_64k(audio)
        queries.append(
            Query(
                "registered_mp3_64k",
                f"ref-{i:04d}",
                label_id,
                _fp(coded),
                _detection(label_id, prng),
            )
        )
    for c in unrel_c:
        audio = load(c)
        queries.append(Query("unrelated", c.key, None, _fp(audio), _detection(None, prng)))
    warmed = {}
    if not args.no_prewarm:
        for t in targets:
            warmed[(t.backend, t.size)] = prewarm(t)
            print(
                f"prewarm {t.backend} N={t.size}: {warmed[(t.backend, t.size)]} s", file=sys.stderr
            )
    load_before = round(os.getloadavg()[0], 2)
    results = run_queries(targets, queries, args.rounds, args.assisted_every)
    load_after = round(os.getloadavg()[0], 2)

    rows = []
    for t in targets:
        k = (t.backend, t.size)
        rows.append(
            {
                "backend": t.backend,
                "size": t.size,
                "fill": fills[k],
                "schema_revision": current_revision(t.engine) if t.engine else None,
                "disk": disk_sizes(t),
                "prewarm_seconds": warmed.get(k),
                "queries": results[k],
            }
        )
    bars = _bars(rows)
    report = {
        "command": "python benchmarks/registry_scale.py " + " ".join(argv or sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "refs": args.refs,
        "unrelated": args.unrelated,
        "rounds": args.rounds,
        "assisted_every": args.assisted_every,
        "prewarm": not args.no_prewarm,
        "load_average_1min": [load_before, load_after],
        "statistics": stats,
        "results": rows,
        "bars": bars,
        "notes": _notes() + args.note,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, separators=(",", ":")) + "\n")
    md = markdown(report)
    (args.md or args.json.with_suffix(".md")).write_text(md)
    print(md)
    return 0


def _fp(audio: Audio) -> fpm.Fingerprint | None:
    try:
        return fpm.compute(audio.samples, audio.sample_rate)
    except ValueError:
        return None


def _bars(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(r["backend"], r["size"]): r["queries"] for r in rows}
    pg = sorted(r["size"] for r in rows if r["backend"] == "postgresql")
    bars = []
    if len(pg) > 1:
        small, large = pg[0], pg[-1]
        a, b = by[("postgresql", small)], by[("postgresql", large)]
        ratio = b["fingerprint_ms_p99"] / a["fingerprint_ms_p99"]
        bars.append(
            {
                "name": f"PostgreSQL fingerprint look-up p99 at {large:,} <= 2 x p99 at {small:,}",
                "value": (
                    f"{b['fingerprint_ms_p99']} ms / {a['fingerprint_ms_p99']} ms = x{ratio:.2f}"
                ),
                "met": ratio <= 2.0,
            }
        )
    for backend in ("postgresql", "sqlite"):
        have = sorted(r["size"] for r in rows if r["backend"] == backend)
        if len(have) > 1:
            small, large = have[0], have[-1]
            a, b = by[(backend, small)], by[(backend, large)]
            bars.append(
                {
                    "name": f"{backend}: recall after MP3 64k at {large:,} = at {small:,}",
                    "value": f"{b['recall_mp3_64k']} vs {a['recall_mp3_64k']}",
                    "met": b["recall_mp3_64k"] == a["recall_mp3_64k"],
                }
            )
    wrong = sum(
        r["queries"]["wrong_matches"] + r["queries"]["assisted_wrong_matches"] for r in rows
    )
    bars.append(
        {"name": "wrong matches (all sizes, both searches)", "value": str(wrong), "met": wrong == 0}
    )
    return bars


def _notes() -> list[str]:
    return [
        "Latencies: the registry call alone, in one warm session per database; the "
        "query's fingerprint is computed beforehand (the same cost at every size).",
        '`by_wm_tags` is the SQL query for the 8 candidate label tags; "assisted" is '
        "`assisted_lookup` as `verify` runs it: that query, then a full fingerprint "
        "comparison with every label it returns.",
        "Wrong matches: fingerprint search + assisted search.",
        "Bulk clips/s includes making the synthetic rows in Python; `Registry.add` clips/s: "
        "the real clips' online inserts, one transaction each.",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
