"""CPU cost of one per-utterance DP-SGD gradient on Kokoro's style (README: "Style
gradient cost (CPU)"). ``nice -n 15 python research/kokoro/style_step.py``."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import rebuild  # noqa: E402
import torch  # noqa: E402
from opacus.accountants import RDPAccountant  # noqa: E402
from opacus.accountants.utils import get_noise_multiplier  # noqa: E402
from preflight import HELD_OUT, N_SENTENCES, SEED  # noqa: E402

from guardian.audio import Audio, resample  # noqa: E402
from guardian.consent import embed  # noqa: E402
from guardian.engine import BaseVoice  # noqa: E402
from guardian.engine._pretrain import public_sentences  # noqa: E402

OUT = ROOT / "research" / "results" / "kokoro_style_step.json"
N = int(os.environ.get("N_UTT", "5"))
STEPS = int(os.environ.get("STEPS", "5"))
VOICE, SR = "jm_kumo", rebuild.SAMPLE_RATE
C, LR = 0.25, float(os.environ.get("LR", "0.5"))
DP = {"target_epsilon": 8.0, "target_delta": 1e-5, "sample_rate": 0.5, "steps": 20}
N_ENROL, T_STEPS = int(os.environ.get("N_ENROL", "24")), int(os.environ.get("T_STEPS", "10"))
N_FFT, WIN, HOP = 2048, 1200, 300
MEL = torch.from_numpy(librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=80)).float()


def log_mel(x: torch.Tensor) -> torch.Tensor:
    spec = torch.stft(x, N_FFT, HOP, WIN, torch.hann_window(WIN), return_complex=True).abs()
    return torch.log(torch.clamp(MEL @ spec, min=1e-5))  # (80, frames)


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # min-cost path (down, right, diagonal); each row's left-to-right scan vectorised
    n, m = cost.shape
    d = np.full((n, m), np.inf)
    d[0] = np.cumsum(cost[0])
    for i in range(1, n):
        enter = cost[i] + np.minimum(d[i - 1], np.r_[np.inf, d[i - 1, :-1]])
        s = np.cumsum(cost[i])
        d[i] = np.minimum.accumulate(enter - s) + s
    i, j, path = n - 1, m - 1, [(n - 1, m - 1)]
    while i or j:
        options = [(i - 1, j - 1), (i - 1, j), (i, j - 1)]
        i, j = min((o for o in options if min(o) >= 0), key=lambda o: d[o])
        path.append((i, j))
    a, b = np.array(path[::-1]).T
    return a, b


def render(model: torch.nn.Module, u: dict, style: torch.Tensor) -> torch.Tensor:
    tokens, n = u["tokens"], u["tokens"].shape[1]
    lengths, mask = torch.full((1,), n), torch.zeros((1, n), dtype=torch.bool)
    with rebuild.deterministic_source():
        bert = model.bert(tokens, attention_mask=(~mask).int())
        d_en = model.bert_encoder(bert).transpose(-1, -2)
        d = model.predictor.text_encoder(d_en, style[:, 128:], lengths, mask)
        f0, noise = model.predictor.F0Ntrain(d.transpose(-1, -2) @ u["aln"], style[:, 128:])
        asr = model.text_encoder(tokens, lengths, mask) @ u["aln"]
        return model.decoder(asr, f0, noise, style[:, :128]).squeeze()


def loss_of(wave: torch.Tensor, u: dict) -> torch.Tensor:
    out = log_mel(wave)
    with torch.no_grad():
        cost = torch.cdist(out.T, u["mel"].T, p=1) / out.shape[0]
    a, b = dtw(cost.numpy())
    return (out[:, a] - u["mel"][:, b]).abs().mean()


def step(model: torch.nn.Module, u: dict, style: torch.nn.Parameter) -> dict:
    style.grad = None
    t0 = time.perf_counter()
    wave = render(model, u, style)
    t1 = time.perf_counter()
    loss = loss_of(wave, u)
    t2 = time.perf_counter()
    loss.backward()
    t3 = time.perf_counter()
    g, norm = style.grad, float(style.grad.norm())
    assert np.isfinite(norm) and norm > 0, f"gradient norm {norm}"
    clipped = g * min(1.0, C / norm)
    t4 = time.perf_counter()
    halves = [float(g[:, :128].norm()), float(g[:, 128:].norm())]  # decoder, prosody
    times = {"forward_s": t1 - t0, "loss_s": t2 - t1, "backward_s": t3 - t2}
    out = {"step_s": t4 - t0, "loss": float(loss), "grad_norm": norm, "halves": halves}
    return {**times, **out, "grad": clipped}


def prepare(model, texts: list, ids: list, style, joe) -> list[dict]:
    utts = []
    for text, tok in zip(texts, ids, strict=True):
        audio, dur = rebuild.synthesise(model, tok, style.detach().numpy())
        dur = torch.as_tensor(dur.ravel(), dtype=torch.long)
        idx = torch.repeat_interleave(torch.arange(len(dur)), dur)
        aln = torch.zeros((1, len(dur), len(idx)))
        aln[0, idx, torch.arange(len(idx))] = 1
        rec = joe.synthesize(text)
        x = resample(np.asarray(rec.mono(), np.float32), rec.sample_rate, SR)
        mel = log_mel(torch.from_numpy(np.asarray(x, np.float32)))
        u = {"tokens": torch.LongTensor([[0, *tok, 0]]), "aln": aln, "mel": mel}
        utts.append({**u, "kokoro_s": len(audio) / SR, "recording_s": len(x) / SR})
    return utts


def dump(doc: dict) -> dict:
    four = json.loads(json.dumps(doc), parse_float=lambda v: float(f"{float(v):.4g}"))
    OUT.write_text(json.dumps(four, separators=(",", ":"), ensure_ascii=False) + "\n")
    return four


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    started = time.perf_counter()
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    texts = [public_sentences(N_SENTENCES, SEED)[i] for i in HELD_OUT][:N]
    model = rebuild.new_model()
    rebuild.load(model, rebuild.onnx_bytes())
    model.requires_grad_(False)

    def mean_loss(utts: list[dict], s: torch.Tensor) -> float:
        with torch.no_grad():
            return float(np.mean([float(loss_of(render(model, u, s), u)) for u in utts]))

    phonemize, pack = rebuild.Phonemizer(), rebuild.voices()[VOICE]
    ids = [phonemize.ids(phonemize(t)) for t in texts]
    n_med = int(np.median([len(i) for i in ids]))
    style = torch.nn.Parameter(torch.from_numpy(rebuild.style_for(pack, n_med)).clone())
    utts = prepare(model, texts, ids, style, BaseVoice())
    rss_prepared = rss_mb()
    print("prepared", rss_prepared, file=sys.stderr, flush=True)
    timing = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        step(model, utts[1], style)  # warm-up, untimed
        rows = [step(model, u, style) | {"audio_s": u["kokoro_s"]} for u in utts]
        for r in rows:
            r.pop("grad")
            print(threads, r, file=sys.stderr, flush=True)
        keys = ("forward_s", "loss_s", "backward_s", "step_s")
        timing[f"threads_{threads}"] = {
            **{f"median_{k}": float(np.median([r[k] for r in rows])) for k in keys},
            "step_s_per_audio_s": float(np.median([r["step_s"] / r["audio_s"] for r in rows])),
            "per_utterance": rows,
            "peak_rss_mb_so_far": rss_mb(),
            "loadavg_1min": os.getloadavg()[0],
        }
    # DP-SGD step on the batch: (sum of clipped grads + N(0, (sigma C)^2)) / B, SGD.
    sigma = get_noise_multiplier(**DP, accountant="rdp")
    init = style.detach().clone()
    t = time.perf_counter()
    rs = [step(model, u, style) for u in utts]
    total = sum(r["grad"] for r in rs)
    noisy = (total + sigma * C * torch.randn_like(init)) / len(utts)
    dp_step = {
        "sigma": sigma,
        "batch": len(utts),
        "seconds": time.perf_counter() - t,
        "noise_over_signal": float(sigma * C * 16 / total.norm()),  # expected norms
        "update_norm": LR * float(noisy.norm()),
        "mean_loss_after": mean_loss(utts, init - LR * noisy),
    }
    # noiseless clipped steps from the initial style: is the gradient useful?
    losses = []
    for k in range(STEPS):
        rs = rs if k == 0 else [step(model, u, style) for u in utts]
        losses.append(float(np.mean([r["loss"] for r in rs])))
        with torch.no_grad():
            style -= LR * sum(r["grad"] for r in rs) / len(utts)
        print("noiseless", k, losses[-1], file=sys.stderr, flush=True)
    losses.append(mean_loss(utts, style.detach()))
    result = {
        "command": "nice -n 15 python research/kokoro/style_step.py",
        "sentences": [HELD_OUT.start + k for k in range(N)],
        "style_row": n_med - 1,
        "clip_norm": C,
        "lr": LR,
        "tokens": [len(i) + 2 for i in ids],
        "kokoro_audio_s": [u["kokoro_s"] for u in utts],
        "recording_audio_s": [u["recording_s"] for u in utts],
        "timing": timing,
        "dp_sgd_step": {**dp_step, "accountant": {**DP, "accountant": "rdp"}},
        "noiseless_steps": {"steps": STEPS, "mean_loss_per_step": losses},
        "style_norm_initial": float(init.norm()),
        "style_change_norm": float((style.detach() - init).norm()),
        "peak_rss_mb": rss_mb(),
        "rss_mb_prepared": rss_prepared,
        "cpu_count": os.cpu_count(),
        "wall_seconds": time.perf_counter() - started,
    }
    print(json.dumps(dump(result)["noiseless_steps"]))


def train() -> None:
    """DP-SGD toward Piper joe (README); SECS on 100-104."""
    started, q, n = time.perf_counter(), DP["sample_rate"], N_ENROL
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    sents = public_sentences(N_SENTENCES, SEED)
    model = rebuild.new_model()
    rebuild.load(model, rebuild.onnx_bytes())
    model.requires_grad_(False)
    phonemize, joe = rebuild.Phonemizer(), BaseVoice()
    ids = [phonemize.ids(phonemize(t)) for t in sents[:n]]
    n_med = int(np.median([len(i) for i in ids]))
    init = torch.from_numpy(rebuild.style_for(rebuild.voices()[VOICE], n_med)).clone()
    utts = prepare(model, sents[:n], ids, init, joe)

    def emb(x: np.ndarray, rate: int) -> np.ndarray:
        return embed(Audio(np.asarray(resample(x, rate, 16000), np.float32)[:, None], 16000))

    def joe_emb(i: int) -> np.ndarray:
        rec = joe.synthesize(sents[i])
        return emb(np.asarray(rec.mono(), np.float32), rec.sample_rate)

    c = np.mean([joe_emb(i) for i in range(120, 130)], axis=0)
    c /= np.linalg.norm(c)
    held = [phonemize.ids(phonemize(sents[i])) for i in range(100, 105)]

    def secs(style: torch.Tensor) -> list[float]:
        return [float(emb(rebuild.synthesise(model, t, style.numpy())[0], SR) @ c) for t in held]

    sigma = get_noise_multiplier(**{**DP, "steps": T_STEPS}, accountant="rdp")
    gen, noise_gen = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    batches = [torch.nonzero(torch.rand(n, generator=gen) < q).ravel() for _ in range(T_STEPS)]
    res = {
        "command": "nice -n 15 python research/kokoro/style_step.py --train",
        **{"n": n, "steps": T_STEPS, "q": q, "sigma": sigma, "style_row": n_med - 1},
        "enrol_kokoro_s": sum(u["kokoro_s"] for u in utts),
        "batch_sizes": [len(b) for b in batches],
        "secs_ceiling_joe": [float(joe_emb(i) @ c) for i in range(100, 105)],
        "secs_start": secs(init),
    }
    for name in ("dp", "noiseless"):
        style, acc, losses, times = torch.nn.Parameter(init.clone()), RDPAccountant(), [], []
        for b in batches:
            t = time.perf_counter()
            rs = [step(model, utts[i], style) for i in b]
            total = sum((r["grad"] for r in rs), torch.zeros_like(init))
            if name == "dp":
                total = total + sigma * C * torch.randn(init.shape, generator=noise_gen)
            with torch.no_grad():
                style -= LR * total / (q * n)
            acc.step(noise_multiplier=sigma, sample_rate=q)
            losses.append(float(np.mean([r["loss"] for r in rs])) if rs else None)
            times.append(time.perf_counter() - t)
            print(name, len(b), losses[-1], times[-1], file=sys.stderr, flush=True)
        res[f"secs_{name}"] = secs(style.detach())
        res[name] = {"batch_loss": losses, "step_s": times, "total_s": sum(times)}
        res[name]["change_norm"] = float((style.detach() - init).norm())
        res["epsilon_spent"] = res.get("epsilon_spent", acc.get_epsilon(DP["target_delta"]))
        res["wall_s"] = time.perf_counter() - started
        dump(json.loads(OUT.read_text()) | {"dp_train": res})
        print(name, res[f"secs_{name}"], res["secs_start"], file=sys.stderr)


if __name__ == "__main__":
    train() if "--train" in sys.argv else main()
