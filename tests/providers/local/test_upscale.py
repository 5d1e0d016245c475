from __future__ import annotations

import io
from typing import Any

import pytest

from tollway.providers.local.errors import LocalMediaUnsupported, LocalModelUnsupported

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

from tollway.providers.local.upscale import LanczosUpscaler  # noqa: E402


def _smooth_image(size: int) -> Any:
    """A smooth synthetic picture (sinusoids), where interpolation quality shows clearly."""
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [np.sin(2 * np.pi * (3 * x + 2 * y)), np.cos(2 * np.pi * 4 * x * y), np.sin(5 * np.pi * x)]
    pixels = np.stack([(c + 1) * 127.5 for c in channels], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _encode(image: Any, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _psnr(a: object, b: object) -> float:
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(10 * np.log10(255.0**2 / np.mean(diff**2)))


@pytest.mark.parametrize("factor", [2, 4])
def test_lanczos_beats_nearest_neighbour(factor: int) -> None:
    original = _smooth_image(256)
    small = original.resize((256 // factor, 256 // factor), Image.Resampling.LANCZOS)
    data, content_type = LanczosUpscaler().upscale(_encode(small, "PNG"), factor)
    upscaled = Image.open(io.BytesIO(data))
    nearest = small.resize((256, 256), Image.Resampling.NEAREST)
    assert content_type == "image/png"
    assert upscaled.size == (256, 256)
    assert _psnr(upscaled, original) > _psnr(nearest, original) + 1.0


@pytest.mark.parametrize(("fmt", "content_type"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_format_is_kept(fmt: str, content_type: str) -> None:
    data, ctype = LanczosUpscaler().upscale(_encode(_smooth_image(40), fmt), 2)
    assert ctype == content_type
    image = Image.open(io.BytesIO(data))
    assert image.format == fmt and image.size == (80, 80)


def test_palette_png_is_upscaled_in_colour() -> None:
    palette = _smooth_image(32).convert("P")
    data, _ = LanczosUpscaler().upscale(_encode(palette, "PNG"), 2)
    assert Image.open(io.BytesIO(data)).mode == "RGB"


def test_other_formats_are_refused() -> None:
    with pytest.raises(LocalMediaUnsupported):
        LanczosUpscaler().upscale(_encode(_smooth_image(16), "GIF"), 2)
    with pytest.raises(LocalMediaUnsupported):
        LanczosUpscaler().upscale(b"not an image", 2)


def test_too_large_output_and_bad_factor_are_refused() -> None:
    wide = _encode(Image.new("RGB", (1100, 10)), "PNG")
    with pytest.raises(LocalModelUnsupported, match="4096"):
        LanczosUpscaler().upscale(wide, 4)
    with pytest.raises(LocalModelUnsupported):
        LanczosUpscaler().upscale(wide, 3)
