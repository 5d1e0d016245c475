"""Encode mono float32 audio to the container formats the speech engines return, with PyAV.

PyAV (``av``) arrives with faster-whisper and bundles FFmpeg with LAME, Opus, FLAC and AAC
encoders, so no system package is needed. ``pcm`` is raw 16-bit little-endian mono at the
source rate, as OpenAI's speech endpoint returns it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and av are imported lazily: they come with the local extra
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True)
class AudioFormat:
    container: str
    codec: str
    content_type: str
    rate: int | None = None  # None: keep the source rate; Opus only accepts 48 kHz (among others)
    options: tuple[tuple[str, str], ...] = ()


# Output formats by name: data, not code. webm/m4a/ogg exist mainly so tests can build inputs.
FORMATS: dict[str, AudioFormat] = {
    "wav": AudioFormat("wav", "pcm_s16le", "audio/wav"),
    "mp3": AudioFormat("mp3", "libmp3lame", "audio/mpeg"),
    "flac": AudioFormat("flac", "flac", "audio/flac"),
    "opus": AudioFormat("ogg", "libopus", "audio/opus", 48000),
    "aac": AudioFormat("adts", "aac", "audio/aac"),
    "ogg": AudioFormat("ogg", "libopus", "audio/ogg", 48000),
    "webm": AudioFormat("webm", "libopus", "audio/webm", 48000),
    "m4a": AudioFormat("ipod", "aac", "audio/mp4"),
}
PCM_CONTENT_TYPE = "audio/pcm"


def to_pcm16(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    """Clip to [-1, 1] and quantise to little-endian int16."""
    import numpy as np

    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")


def encode(samples: npt.NDArray[np.float32], rate: int, fmt: str) -> tuple[bytes, str]:
    """Mono float32 samples at ``rate`` -> (file bytes, content type). ``fmt`` in FORMATS or 'pcm'."""
    if fmt == "pcm":
        return to_pcm16(samples).tobytes(), PCM_CONTENT_TYPE
    spec = FORMATS[fmt]
    return _encode_with_av(to_pcm16(samples), rate, spec), spec.content_type


def _encode_with_av(pcm: npt.NDArray[np.int16], rate: int, spec: AudioFormat) -> bytes:
    import av  # lazy: PyAV is only installed with the local extra

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=spec.container) as container:
        stream: Any = container.add_stream(spec.codec, rate=spec.rate or rate)
        stream.layout = "mono"
        stream.codec_context.options = dict(spec.options)
        stream.codec_context.open()  # open now so frame_size/format are known for the resampler
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(
            format=stream.codec_context.format.name,
            layout="mono",
            rate=stream.codec_context.sample_rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        frames = resampler.resample(frame) if len(pcm) else []  # FFmpeg rejects a 0-sample frame
        for chunk in [*frames, *resampler.resample(None)]:
            container.mux(stream.encode(chunk))
        container.mux(stream.encode(None))
    return buffer.getvalue()
