from __future__ import annotations

import io
from typing import Any

import pytest

from tollway.providers.local.errors import LocalModelUnsupported

av = pytest.importorskip("av")

TEXT = "Good morning. The train to the city leaves at nine."


def _duration(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.sample_rate


def test_only_offline_voices_are_listed(speaker: Any) -> None:
    voices = {v["id"]: v for v in speaker.voices()}
    assert voices["heart"]["bundled"] is True
    assert voices["heart"]["language"] == "en-US" and voices["heart"]["accent"] == "American"
    for voice_id in voices:  # never a voice that would be downloaded on first use
        assert speaker.resolve_voice(voice_id) == voice_id


@pytest.fixture(scope="module")
def reference_seconds(speaker: Any) -> float:
    return len(speaker.render(TEXT)) / 24000


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("mp3", "audio/mpeg"),
        ("wav", "audio/wav"),
        ("opus", "audio/opus"),
        ("flac", "audio/flac"),
        ("aac", "audio/aac"),
    ],
)
def test_each_format_decodes_to_the_same_duration(
    speaker: Any, reference_seconds: float, fmt: str, content_type: str
) -> None:
    data, ctype = speaker.synthesize(TEXT, "heart", 1.0, fmt)
    assert ctype == content_type
    assert _duration(data) == pytest.approx(reference_seconds, abs=0.1)


def test_pcm_is_raw_16bit_mono_24khz(speaker: Any, reference_seconds: float) -> None:
    data, ctype = speaker.synthesize(TEXT, fmt="pcm")
    assert ctype == "audio/pcm"
    assert len(data) == round(reference_seconds * 24000) * 2


def test_speed_changes_duration(speaker: Any, reference_seconds: float) -> None:
    slow = len(speaker.render(TEXT, speed=0.5)) / 24000
    fast = len(speaker.render(TEXT, speed=2.0)) / 24000
    assert slow > reference_seconds * 1.5
    assert fast < reference_seconds * 0.75


def test_same_request_gives_same_audio(speaker: Any) -> None:
    assert speaker.synthesize(TEXT, fmt="wav") == speaker.synthesize(TEXT, fmt="wav")


def test_openai_voice_names_map_to_the_bundled_voice(speaker: Any) -> None:
    assert speaker.resolve_voice("alloy") == "heart"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"voice": "nonexistent"}, "voice"),
        ({"fmt": "ogg"}, "response_format"),
        ({"speed": 5.0}, "speed"),
        ({"text": "   "}, "input"),
        ({"text": "🙂 ✓"}, "input"),
    ],
)
def test_invalid_requests_are_refused(speaker: Any, kwargs: dict[str, Any], param: str) -> None:
    request = {"text": TEXT, **kwargs}
    with pytest.raises(LocalModelUnsupported) as info:
        speaker.synthesize(**request)
    assert info.value.param == param
