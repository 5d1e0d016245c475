"""Text-to-speech with ``hibari-tts`` (Kokoro-82M distilled to an 8 MB ONNX model, 24 kHz, English).

Only the voice ``heart`` (American English, female) ships inside the package; hibari downloads its
other voices on first use, which an offline gateway must never do, so ``voices()`` lists only voices
already on disk and ``synthesize`` never triggers a download. OpenAI's voice names (alloy, echo, ...)
are accepted as aliases of the default voice so OpenAI clients work unchanged.

Speed uses the model's own ``speed`` input (it scales predicted phoneme durations), so pace changes
without a pitch shift. Synthesis is serialised per voice by a lock: it runs ~100x faster than real
time, so callers rarely wait, and hibari's G2P keeps caches we don't want to share across threads.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tollway.providers.local import _audio
from tollway.providers.local._deps import require
from tollway.providers.local.errors import LocalModelUnsupported

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MODEL_ID = "local:hibari"
SAMPLE_RATE = 24000
DEFAULT_VOICE = "heart"
OUTPUT_FORMATS: tuple[str, ...] = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MIN_SPEED, MAX_SPEED = 0.25, 4.0
MAX_INPUT_CHARS = 4096  # OpenAI's limit for /v1/audio/speech
OPENAI_VOICE_ALIASES = frozenset(
    {"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage", "shimmer"}
    | {"verse"}
)
SEED = 0  # hibari adds seeded noise: a fixed seed makes the same request give the same audio


class HibariSpeaker:
    """Synthesises English speech; ``synthesize`` returns encoded bytes and a content type."""

    def __init__(self, *, threads: int = 1) -> None:
        self.threads = threads
        self._voices: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._registry: dict[str, dict[str, Any]] | None = None

    @property
    def loaded(self) -> bool:
        return DEFAULT_VOICE in self._voices

    def load(self) -> None:
        """Load the bundled default voice (~0.5 s); other on-disk voices load on first use."""
        self._voice_model(DEFAULT_VOICE)

    def voices(self) -> list[dict[str, Any]]:
        """Voices usable offline: [{id, name, language, accent, gender, bundled}]."""
        registry = self._voice_registry()
        return [
            {
                "id": name,
                "name": name.capitalize(),
                "language": info["language"],
                "accent": info["accent"],
                "gender": info["gender"],
                "bundled": bool(info.get("bundled")),
            }
            for name, info in registry.items()
            if self._on_disk(name)
        ]

    def synthesize(
        self, text: str, voice: str = DEFAULT_VOICE, speed: float = 1.0, fmt: str = "mp3"
    ) -> tuple[bytes, str]:
        """Speak ``text``; returns (audio bytes, content type). pcm = raw s16le mono 24 kHz."""
        self._validate(text, speed, fmt)
        samples = self.render(text, voice, speed)
        if not len(samples):  # e.g. only emoji: hibari's G2P finds nothing to pronounce
            raise LocalModelUnsupported(MODEL_ID, "input contains no speakable English text", param="input")
        return _audio.encode(samples, SAMPLE_RATE, fmt)

    def render(self, text: str, voice: str = DEFAULT_VOICE, speed: float = 1.0) -> npt.NDArray[np.float32]:
        """Unencoded float32 samples at 24 kHz (used by synthesize and by tests)."""
        name = self.resolve_voice(voice)
        model = self._voice_model(name)
        with self._locks[name]:
            samples = model(text, speed=speed, seed=SEED)
        return samples.astype("float32", copy=False)

    def resolve_voice(self, voice: str) -> str:
        """An on-disk hibari voice name; OpenAI names fall back to the default voice."""
        if voice in self._voice_registry() and self._on_disk(voice):
            return voice
        if voice in OPENAI_VOICE_ALIASES:
            return DEFAULT_VOICE
        available = ", ".join(v["id"] for v in self.voices())
        raise LocalModelUnsupported(
            MODEL_ID, f"voice {voice!r} is not available offline (available: {available})", param="voice"
        )

    def _validate(self, text: str, speed: float, fmt: str) -> None:
        problem = _invalid(text, speed, fmt)
        if problem is not None:
            raise LocalModelUnsupported(MODEL_ID, problem[1], param=problem[0])

    def _voice_registry(self) -> dict[str, dict[str, Any]]:
        if self._registry is None:
            self._registry = dict(require(MODEL_ID, "hibari.voices", "hibari-tts").VOICES)
        return self._registry

    def _on_disk(self, name: str) -> bool:
        voices = require(MODEL_ID, "hibari.voices", "hibari-tts")
        try:
            voices.voice_path(name, download_missing=False)
        except (FileNotFoundError, ValueError):
            return False
        return True

    def _voice_model(self, name: str) -> Any:
        with self._lock:
            if name not in self._voices:
                hibari = require(MODEL_ID, "hibari", "hibari-tts")
                self._voices[name] = hibari.Hibari(voice=name, threads=self.threads)
                self._locks[name] = threading.Lock()
            return self._voices[name]


def _invalid(text: str, speed: float, fmt: str) -> tuple[str, str] | None:
    """(parameter, reason) for the first invalid argument, or None."""
    if not text.strip():
        return "input", "input text is empty"
    if len(text) > MAX_INPUT_CHARS:
        return "input", f"input exceeds {MAX_INPUT_CHARS} characters"
    if not MIN_SPEED <= speed <= MAX_SPEED:
        return "speed", f"speed must be in [{MIN_SPEED}, {MAX_SPEED}]"
    if fmt not in OUTPUT_FORMATS:
        return "response_format", f"response_format {fmt!r} not in {', '.join(OUTPUT_FORMATS)}"
    return None
