"""DP training of the speaker adapter on a CUDA GPU against the CPU, same data and seeds.

Checks what ``guardian train --device cuda`` changes: the per-utterance losses and
their gradient must agree with the CPU's, the accountant must spend the same epsilon over the
same Poisson-sampled steps, and the trained adapter must clone the voice as well as
one trained on the CPU. Three steps, because the GPU machine has only PyTorch, Opacus
and NumPy, not the speech stack:

    .venv/bin/python research/engine_cuda.py prepare   # here: pack the two targets'
                                                         # enrollment data (data/engine/cuda/)
    python3 research/engine_cuda.py device --out DIR   # on the GPU machine: train on the
                                                         # CPU and on CUDA -> DIR/engine_cuda_runs.*
    .venv/bin/python research/engine_cuda.py score --runs DIR
                                                         # here: SECS of every adapter ->
                                                         # research/results/engine_cuda.{json,md}

Sampling uses a CPU generator on both devices, so both see the same batches; the DP
noise is drawn on the device that holds the gradients, so the noise differs between the
two and the SECS figures are compared as two draws of the same mechanism.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from guardian.engine._adapter import Prior, SpeakerAdapter  # noqa: E402
from guardian.engine._data import pad  # noqa: E402
from guardian.engine._dp import train_dp  # noqa: E402
from guardian.engine._prior import load_converter  # noqa: E402
from guardian.engine._world import N_MEL  # noqa: E402

PACKED = ROOT / "data" / "engine" / "cuda" / "packed.npz"
RESULTS = ROOT / "research" / "results"
TARGETS = ("slt", "espeak_rp_f2")
"""The easiest and the hardest benchmark target (what fits the GPU machine's upload)."""
EPSILONS = (8.0, 1.0)
SEEDS = (0, 1)
DELTA = 1e-5


def _theta_key(name: str, eps: float, seed: int, device: str) -> str:
    """Name of one run's adapter in ``engine_cuda_runs.npz``."""
    return f"{name}_eps{eps:g}_seed{seed}_{device}"


def cmd_prepare(_: argparse.Namespace) -> None:
    """Store each target's 100 enrollment examples compactly for the GPU machine.

    Only the columns that do not depend on the adapter size travel (float16, without
    padding); :func:`packed_for` adds the principal components of each tier's prior.
    """
    from engine import ENROLL, frames

    from guardian.engine._data import example

    conv = load_converter()
    joe = frames("joe")
    prior = conv.prior_for(max(EPSILONS))
    arrays: dict[str, np.ndarray] = {}
    for name in TARGETS:
        target = frames(name)
        rows = [example(target[i], joe[i], prior)[:, prior.p :] for i in ENROLL]
        arrays[f"{name}_rows"] = np.concatenate(rows).astype(np.float16)
        arrays[f"{name}_lengths"] = np.array([len(r) for r in rows])
    PACKED.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(PACKED, **arrays)
    print(f"{PACKED}: {PACKED.stat().st_size / 2**20:.1f} MiB")


def packed_for(z: dict[str, np.ndarray], name: str, prior: Prior) -> np.ndarray:
    """(N, T, F) training examples of one target for ``prior`` (see ``_data.example``)."""
    rows = z[f"{name}_rows"].astype(np.float32)
    features = prior.features(rows[:, :N_MEL])
    full = np.concatenate([features, rows], axis=1)
    bounds = np.concatenate([[0], np.cumsum(z[f"{name}_lengths"])])
    return pad([full[a:b] for a, b in itertools.pairwise(bounds)])


def _loss_and_grads(
    prior: Prior, packed: np.ndarray, theta: torch.Tensor, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-utterance losses and the gradient of their sum, in float32 on ``device``."""
    model = SpeakerAdapter(prior).to(device)
    with torch.no_grad():
        model.theta.copy_(theta.to(device))
    losses = model(torch.from_numpy(packed).to(device))
    losses.sum().backward()
    assert model.theta.grad is not None
    return losses.detach().cpu().double(), model.theta.grad.detach().cpu().double()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def cmd_device(args: argparse.Namespace) -> None:
    acc = args.accelerator
    if acc == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run this on a GPU machine")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    conv = load_converter()
    thetas: dict[str, np.ndarray] = {}
    rows = []
    with np.load(PACKED) as z:
        stored = {k: z[k] for k in z.files}
    if acc == "cuda":  # CUDA context, kernels and Opacus's first step out of the timings
        warm = conv.prior_for(max(EPSILONS))
        tier = conv.tier(max(EPSILONS))
        train_dp(
            packed_for(stored, TARGETS[0], warm)[:8],
            warm,
            tier.dp,
            epsilon=8.0,
            delta=DELTA,
            device="cuda",
            seed=0,
        )
    for name in args.targets:
        for eps in args.epsilons:
            prior, tier = conv.prior_for(eps), conv.tier(eps)
            packed = packed_for(stored, name, prior)
            # Same function on both devices: loss and gradient at the public prior and at
            # a random point near it.
            parity = {}
            init = SpeakerAdapter(prior).theta.detach()
            for label, theta in (
                ("prior", init),
                (
                    "perturbed",
                    init
                    + 0.1 * torch.randn(init.shape, generator=torch.Generator().manual_seed(1)),
                ),
            ):
                l_cpu, g_cpu = _loss_and_grads(prior, packed, theta, "cpu")
                l_gpu, g_gpu = _loss_and_grads(prior, packed, theta, acc)
                parity[label] = {
                    "loss_rel_err": _rel(l_gpu, l_cpu),
                    "grad_rel_err": _rel(g_gpu, g_cpu),
                }
            for seed in args.seeds:
                for label, device in (("cpu", "cpu"), ("cuda", acc)):
                    if device == "cuda":
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                    t0 = time.perf_counter()
                    run = train_dp(
                        packed, prior, tier.dp, epsilon=eps, delta=DELTA, device=device, seed=seed
                    )
                    if device == "cuda":
                        torch.cuda.synchronize()
                    seconds = time.perf_counter() - t0
                    thetas[_theta_key(name, eps, seed, label)] = run.theta
                    rows.append(
                        {
                            "target": name,
                            "epsilon": eps,
                            "seed": seed,
                            "device": label,
                            "seconds": seconds,
                            "epsilon_spent": run.epsilon,
                            "noise_multiplier": run.noise_multiplier,
                            "steps": run.steps,
                            "poisson": run.poisson,
                            "batch_sizes": list(run.batch_sizes),
                            "theta_finite": bool(np.isfinite(run.theta).all()),
                            "peak_gpu_mib": (
                                torch.cuda.max_memory_allocated() / 2**20
                                if device == "cuda"
                                else None
                            ),
                            "parity": parity,
                        }
                    )
                    print(
                        f"{name} eps {eps:g} seed {seed} {label}: {seconds:.2f} s, "
                        f"eps spent {run.epsilon:.4f}, {run.steps} steps",
                        flush=True,
                    )
    meta = {
        "gpu": torch.cuda.get_device_name(0) if acc == "cuda" else "none (dry run on the CPU)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
    }
    (out / "engine_cuda_runs.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=1))
    np.savez(out / "engine_cuda_runs.npz", **thetas)


def cmd_score(args: argparse.Namespace) -> None:
    from engine import HELD_OUT, adapter_with, centroid, corpus, frames, secs_of

    from guardian.engine._convert import convert_frames

    runs_dir = Path(args.runs)
    data = json.loads((runs_dir / "engine_cuda_runs.json").read_text())
    conv = load_converter()
    joe = frames("joe")
    with np.load(runs_dir / "engine_cuda_runs.npz") as z:
        thetas = {k: z[k] for k in z.files}
    cents = {name: centroid(corpus(name)) for name in TARGETS}
    for row in data["runs"]:
        eps, name = row["epsilon"], row["target"]
        adapter = adapter_with(
            conv.prior_for(eps), thetas[_theta_key(name, eps, row["seed"], row["device"])]
        )
        row["secs"] = secs_of([convert_frames(adapter, joe[i]) for i in HELD_OUT], cents[name])
        print(
            f"{name} eps {eps:g} seed {row['seed']} {row['device']}: SECS {row['secs']:.3f}",
            flush=True,
        )
    data["command"] = "research/engine_cuda.py prepare, device, score"
    four = json.loads(json.dumps(data), parse_float=lambda v: float(f"{float(v):.4g}"))
    (RESULTS / "engine_cuda.json").write_text(json.dumps(four, separators=(",", ":")) + "\n")
    (RESULTS / "engine_cuda.md").write_text(report(data))


def report(data: dict[str, Any]) -> str:
    runs = data["runs"]
    meta = data["meta"]
    lines = [
        "# DP training on CUDA against the CPU",
        "",
        f"`research/engine_cuda.py` (prepare, device, score). GPU: {meta['gpu']}, "
        f"PyTorch {meta['torch']}, Python {meta['python']}; the CPU runs ran on the same "
        f"machine ({meta['cpu_threads']} threads). 100 enrollment utterances per target, "
        f"delta {DELTA:g}, seeds {', '.join(sorted({str(r['seed']) for r in runs}))}.",
        "",
        "| target | ε | SECS CPU | SECS CUDA | ε spent CPU / CUDA | steps | same batches | "
        "loss / grad rel. error | seconds CPU / CUDA |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, eps in dict.fromkeys((r["target"], r["epsilon"]) for r in runs):
        sel = [r for r in runs if r["target"] == name and r["epsilon"] == eps]
        cpu = [r for r in sel if r["device"] == "cpu"]
        gpu = [r for r in sel if r["device"] == "cuda"]
        same = all(a["batch_sizes"] == b["batch_sizes"] for a, b in zip(cpu, gpu, strict=True))
        par = cpu[0]["parity"]
        worst_l = max(p["loss_rel_err"] for p in par.values())
        worst_g = max(p["grad_rel_err"] for p in par.values())
        lines.append(
            f"| {name} | {eps:g} | {np.mean([r['secs'] for r in cpu]):.3f} | "
            f"{np.mean([r['secs'] for r in gpu]):.3f} | "
            f"{max(r['epsilon_spent'] for r in cpu):.3f} / "
            f"{max(r['epsilon_spent'] for r in gpu):.3f} | {cpu[0]['steps']} | "
            f"{'yes' if same else 'no'} | {worst_l:.1e} / {worst_g:.1e} | "
            f"{np.mean([r['seconds'] for r in cpu]):.2f} / "
            f"{np.mean([r['seconds'] for r in gpu]):.2f} |"
        )
    cpu_all = [r["secs"] for r in runs if r["device"] == "cpu"]
    gpu_all = [r["secs"] for r in runs if r["device"] == "cuda"]
    peak = max(r["peak_gpu_mib"] or 0 for r in runs)
    lines += [
        "",
        f"Mean SECS over all targets, epsilons and seeds: CPU {np.mean(cpu_all):.3f}, "
        f"CUDA {np.mean(gpu_all):.3f}. Peak GPU memory {peak:.0f} MiB. SECS is each "
        "seed's mean over the 20 held-out sentences, averaged over the seeds.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare", help="pack the targets' enrollment data").set_defaults(fn=cmd_prepare)
    dev = sub.add_parser("device", help="train on CPU and CUDA (GPU machine)")
    dev.add_argument("--out", required=True)
    dev.add_argument(
        "--accelerator", default="cuda", help="'cpu' dry-runs the whole flow without a GPU"
    )
    dev.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    dev.add_argument("--epsilons", nargs="+", type=float, default=list(EPSILONS))
    dev.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    dev.set_defaults(fn=cmd_device)
    score = sub.add_parser("score", help="SECS of the runs, write research/results/engine_cuda.*")
    score.add_argument("--runs", required=True)
    score.set_defaults(fn=cmd_score)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
