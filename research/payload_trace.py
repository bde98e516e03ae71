"""Does the payload trace attacked clips that the fingerprint alone cannot? v8 against v13.

    .venv/bin/python benchmarks/payload_trace.py [--clips 40]

``verify`` on a clip without a manifest first looks for identical audio, then searches
the whole registry by audio fingerprint (strict threshold), and only then lets the
watermark's payload name a few registry rows, which the fingerprint confirms at a
looser threshold (docs/watermark.md, "Payload"). This benchmark labels ``--clips``
held-out speech clips of the watermark benchmark into one registry per model, runs
each attack of the suite that needs no other speech on every labeled clip, verifies the
result (re-encoded, so the manifest is gone) and counts how each clip was traced: by
the fingerprint alone (``match`` ``content_hash`` or ``fingerprint``), by the payload
(``watermark``), or not at all, and every time a clip was traced to a wrong label.
v8's payload is barely readable (bit accuracy 0.58) and v13's is (0.99), so the
difference between the two is what the payload adds. Both models see the same clips
and the same random draws. Run ``benchmarks/watermark.py`` once first: it synthesises
and caches the clips. Writes ``OUT/payload_trace.json`` and
``docs/benchmarks/payload_trace.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from guardian.app import LabelRequest, Verdict, label_file, open_guardian, verify_bytes
from guardian.audio import OutputFormat, decode_bytes, encode_bytes
from guardian.config import Settings
from guardian.watermark._config import WEIGHTS_DIR
from guardian.watermark.attacks import ATTACKS, by_name

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "payload_trace.md"
CARDS = ("guardian-wm-v8", "guardian-wm-v13")
NEEDS_OTHER_SPEECH = {"splice", "mix_speech_10db"}
BY_FINGERPRINT = {"content_hash", "fingerprint"}


def run(card: str, clips: list[Path], attacks: list[str]) -> dict[str, Counter[str]]:
    tally: dict[str, Counter[str]] = {a: Counter() for a in attacks}
    with tempfile.TemporaryDirectory() as tmp:  # labeled audio and registry, then gone
        root = Path(tmp)
        g = open_guardian(
            Settings(
                home=root / "home",
                database_url=None,
                master_key=None,
                watermark_model=str(WEIGHTS_DIR / f"{card}.yaml"),
            )
        )
        labeled = []
        for n, path in enumerate(clips):
            out = root / f"labeled-{n}.wav"
            result = label_file(g, LabelRequest(source=path, output=out, purpose="benchmark"))
            labeled.append((result.label_id, decode_bytes(out.read_bytes())))
        for n, (label_id, audio) in enumerate(labeled):
            for attack in attacks:
                attacked = by_name(attack)(audio, np.random.default_rng(n))
                found = verify_bytes(g, encode_bytes(attacked, OutputFormat.WAV))
                if found.verdict is Verdict.TRACED:
                    if found.label_id != label_id:
                        outcome = "wrong"
                    elif found.match in BY_FINGERPRINT:
                        outcome = "fingerprint"
                    else:
                        outcome = str(found.match)
                else:
                    outcome = found.verdict.value
                tally[attack][outcome] += 1
            print(f"{card}: clip {n + 1}/{len(labeled)}", flush=True)
    return tally


def markdown(report: dict[str, Any]) -> str:
    n = report["clips"]
    lines = [
        "# What the payload adds to tracing",
        "",
        f"`benchmarks/payload_trace.py` (see its docstring): {n} held-out speech clips of",
        "the watermark benchmark labeled per model, each attacked and verified without its",
        "manifest. Per attack: clips traced by the fingerprint alone / traced in all (the",
        "payload naming the row the fingerprint confirms) / traced to a wrong label.",
        "",
        "| attack | " + " | ".join(report["cards"]) + " |",
        "|---|" + "---|" * len(report["cards"]),
    ]
    totals: dict[str, Counter[str]] = {c: Counter() for c in report["cards"]}
    for attack in report["attacks"]:
        cells = []
        for card in report["cards"]:
            t = Counter(report["results"][card][attack])
            totals[card].update(t)
            fp, wm = t["fingerprint"], t["watermark"]
            cells.append(f"{fp} / {fp + wm} / {t['wrong']}")
        lines.append(f"| {attack} | " + " | ".join(cells) + " |")
    cells = []
    for card in report["cards"]:
        t = totals[card]
        fp, wm, all_ = t["fingerprint"], t["watermark"], n * len(report["attacks"])
        cells.append(f"**{fp / all_:.3f} / {(fp + wm) / all_:.3f} / {t['wrong']}**")
    lines.append("| all (share) | " + " | ".join(cells) + " |")
    lines += ["", f"Wall time {report['wall_s'] / 60:.1f} minutes."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    clips = sorted((args.out / "wm-corpus" / "pos").glob("*.wav"))[: args.clips]
    if args.clips < 1 or not clips:
        raise SystemExit("no clips: run benchmarks/watermark.py once first (it caches them)")
    attacks = [a.name for a in ATTACKS if a.name not in NEEDS_OTHER_SPEECH]
    started = time.perf_counter()
    results = {card: run(card, clips, attacks) for card in CARDS}
    report = {
        "clips": len(clips),
        "cards": list(CARDS),
        "attacks": attacks,
        "results": {c: {a: dict(t) for a, t in r.items()} for c, r in results.items()},
        "wall_s": time.perf_counter() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "payload_trace.json").write_text(json.dumps(report, indent=2) + "\n")
    DOC.write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
