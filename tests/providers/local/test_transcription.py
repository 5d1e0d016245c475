from __future__ import annotations

from typing import Any

import pytest

from tests.providers.local.conftest import word_error_rate
from tollway.providers.local import _audio
from tollway.providers.local.errors import LocalMediaUnsupported, LocalModelUnsupported

SENTENCE = "The weather is sunny and warm today, so we will walk to the park after lunch."


@pytest.fixture(scope="module")
def spoken(speaker: Any) -> Any:
    return speaker.render(SENTENCE)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "ogg", "webm", "m4a"])
def test_tts_then_stt_recovers_the_sentence(transcriber: Any, spoken: Any, fmt: str) -> None:
    data, _ = _audio.encode(spoken, 24000, fmt)
    result = transcriber.transcribe(data, f"speech.{fmt}")
    assert word_error_rate(SENTENCE, result.text) <= 0.2, result.text
    assert result.language == "en"
    assert result.duration == pytest.approx(len(spoken) / 24000, abs=0.1)
    assert result.segments and result.segments[0].id == 0
    assert result.words is None


def test_word_timestamps(transcriber: Any, spoken: Any) -> None:
    data, _ = _audio.encode(spoken, 24000, "wav")
    result = transcriber.transcribe(data, "speech.wav", language="en-US", word_timestamps=True)
    assert result.words and len(result.words) >= 10
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert isinstance(starts[0], float)
    assert result.as_dict()["words"][0]["word"].strip()


def test_non_english_language_is_refused(transcriber: Any) -> None:
    with pytest.raises(LocalModelUnsupported, match="English only") as info:
        transcriber.transcribe(b"ignored", "a.wav", language="fr")
    assert info.value.param == "language"


def test_undecodable_audio_is_refused(transcriber: Any) -> None:
    with pytest.raises(LocalMediaUnsupported):
        transcriber.transcribe(b"this is not audio" * 100, "notes.mp3")
