"""Time to erase a subject with 100 samples and a trained adapter.

    .venv/bin/python benchmarks/erasure.py [--others 200] [--repeats 3]

Builds a home with one subject holding 100 enrollment samples (5 s of 16 kHz audio
each, sealed in the vault), embeddings, a consent record and an adapter, beside
``--others`` enrolled subjects whose data keys the root-key ratchet must re-wrap; then
times ``forget`` end to end (transaction, receipt signing, key file rotation).
Writes docs/benchmarks/erasure.json and docs/benchmarks/erasure.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from guardian.app import Guardian, forget, open_guardian
from guardian.config import Settings
from guardian.store import SubjectStatus, Voice, VoiceStatus, utcnow
from guardian.vault import BlobKind

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def _subject(g: Guardian, *, samples: int, tag: str) -> str:
    rng = np.random.default_rng(0)
    with g.transaction() as s:
        subject = g.vault.new_subject(s)
        subject.status = SubjectStatus.ENROLLED
        s.add(subject)
        voice = f"voice_{tag:a>26}"
        for _ in range(samples):
            pcm = (rng.normal(0, 0.1, 5 * 16000) * 32767).astype("<i2").tobytes()
            g.vault.put(s, subject.id, BlobKind.SAMPLE, pcm, ref=voice)
        g.vault.put(s, subject.id, BlobKind.EMBEDDING, bytes(4 * 256 * samples), ref=voice)
        g.vault.put(s, subject.id, BlobKind.ADAPTER, bytes(40_000), ref=voice)
        blob = g.vault.put(s, subject.id, BlobKind.CONSENT_RECORD, b"{}", ref=voice)
        s.add(
            Voice(
                id=voice,
                subject_id=subject.id,
                consent_id=f"consent_{tag:a>26}",
                status=VoiceStatus.ACTIVE,
                organization="Bench",
                purposes_json='["bench"]',
                requesters_json="[]",
                max_epsilon=8.0,
                record_blob_id=blob.id,
                record_sha256="0" * 64,
                withdraw_token_mac=f"{tag:0>64}",
                created_at=utcnow(),
            )
        )
    return subject.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--others", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="guardian-bench-") as tmp:
            g = open_guardian(Settings(home=Path(tmp) / "home"))
            g.ensure_keys()
            for i in range(args.others):
                _subject(g, samples=1, tag=f"o{r}x{i}")
            target = _subject(g, samples=100, tag=f"t{r}")
            t0 = time.perf_counter()
            receipt = forget(g, target).receipt
            times.append(time.perf_counter() - t0)
            blobs = receipt.body["destroyed"]["vault_blobs"]
            g.engine.dispose()
    result = {
        "samples": 100,
        "vault_blobs_destroyed": blobs,
        "other_subjects_rewrapped": args.others,
        "forget_s_median": round(statistics.median(times), 3),
        "forget_s_all": [round(t, 3) for t in times],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "erasure.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "erasure.md").write_text(
        "# Erasure time\n\n"
        f"`.venv/bin/python benchmarks/erasure.py --others {args.others} "
        f"--repeats {args.repeats}` (SQLite, 2 CPU cores)\n\n"
        "| measure | value |\n|---|---|\n"
        f"| subject: samples (5 s each), embeddings, record, adapter | 100 + 3 vault blobs |\n"
        f"| other subjects whose keys are re-wrapped | {args.others} |\n"
        f"| `forget`, end to end (median of {args.repeats}) | "
        f"{result['forget_s_median']} s |\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
