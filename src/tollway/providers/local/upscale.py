"""Image upscaling with Pillow's Lanczos filter: classical resampling, no learned model.

Output keeps the input format (PNG, JPEG or WebP). Other formats and outputs beyond
4096x4096 or 16 megapixels are refused before any pixels are allocated. ``upscale`` is thread-safe
(Pillow releases the GIL while resampling and no state is shared between calls).
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from tollway.providers.local._deps import require
from tollway.providers.local.errors import LocalMediaUnsupported, LocalModelUnsupported

MODEL_ID = "local:lanczos"
FACTORS: tuple[int, ...] = (2, 4)
MAX_SIDE = 4096
MAX_PIXELS = 16_000_000
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
JPEG_QUALITY = 92  # close to visually lossless; Pillow's default 75 would undo the upscale's detail
WEBP_QUALITY = 90


class LanczosUpscaler:
    """Upscales PNG/JPEG/WebP images by 2x or 4x with Lanczos resampling."""

    def __init__(self) -> None:
        self._image: Any = None

    @property
    def loaded(self) -> bool:
        return self._image is not None

    def load(self) -> None:
        self._image = require(MODEL_ID, "PIL.Image", "Pillow")

    def upscale(self, image_bytes: bytes, factor: int = 2) -> tuple[bytes, str]:
        """Return (image bytes, content type) at ``factor`` times the width and height."""
        if factor not in FACTORS:
            raise LocalModelUnsupported(MODEL_ID, f"factor must be one of {FACTORS}", param="factor")
        self.load()
        image = self._open(image_bytes)
        width, height = image.width * factor, image.height * factor
        _check_size(width, height)
        resized = _resampleable(image).resize((width, height), self._image.Resampling.LANCZOS)
        return _save(resized, image.format), CONTENT_TYPES[image.format]

    def _open(self, image_bytes: bytes) -> Any:
        pil = self._image
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pil.DecompressionBombWarning)
                image = pil.open(io.BytesIO(image_bytes), formats=list(CONTENT_TYPES))
                image.load()
        except (pil.UnidentifiedImageError, pil.DecompressionBombWarning, pil.DecompressionBombError) as exc:
            raise LocalMediaUnsupported(
                MODEL_ID, f"image must be PNG, JPEG or WebP of sane size ({exc})", param="image"
            ) from exc
        except OSError as exc:  # truncated or corrupt file
            raise LocalMediaUnsupported(MODEL_ID, f"could not decode image: {exc}", param="image") from exc
        return image


def _resampleable(image: Any) -> Any:
    """Palette and 1-bit images would be resized nearest-neighbour by Pillow: widen them first."""
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode == "1":
        return image.convert("L")
    return image


def _check_size(width: int, height: int) -> None:
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise LocalModelUnsupported(
            MODEL_ID,
            f"output {width}x{height} exceeds {MAX_SIDE}x{MAX_SIDE} or {MAX_PIXELS // 1_000_000} megapixels",
            param="image",
        )


def _save(image: Any, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, format=fmt, quality=JPEG_QUALITY)
    elif fmt == "WEBP":
        image.save(out, format=fmt, quality=WEBP_QUALITY)
    else:
        image.save(out, format=fmt, optimize=False)
    return out.getvalue()
