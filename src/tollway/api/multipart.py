"""Reading `multipart/form-data` uploads (audio files, images) with aiohttp's streaming reader.

aiohttp's `client_max_size` only guards `request.read()`/`post()`; the multipart reader streams, so the
limits are enforced here while reading: a file over its limit stops the upload with a 413 at once,
instead of buffering it all first. Text fields are small by nature and get a small limit of their own.
Fields named `x[]` (how OpenAI's SDKs send arrays such as `timestamp_granularities[]`) become lists
under `x`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from tollway.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from tollway.types import JSON, UploadedFile

MB = 1024 * 1024
FIELD_LIMIT = 64 * 1024  # a text field (prompt, language, ...) never needs more
MAX_PARTS = 64
_CHUNK = 256 * 1024


@dataclass
class Form:
    """The parsed form: text fields (lists for `name[]` fields) and uploaded files by field name."""

    fields: JSON = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


async def read_form(request: web.Request, *, file_fields: Collection[str], file_limit: int) -> Form:
    """Read a multipart form whose files are `file_fields`, each at most `file_limit` bytes."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            f"Expected multipart/form-data (an upload with the field '{next(iter(file_fields))}'), "
            f"got '{request.content_type or 'no content type'}'."
        )
    try:
        reader = await request.multipart()
        return await _read_parts(reader, file_fields, file_limit)
    # aiohttp asserts on a missing boundary, and raises its HTTP parser's errors on a part's bad headers
    except (AssertionError, ValueError, HttpProcessingError) as exc:
        detail = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
        raise InvalidRequest(f"The multipart body could not be parsed: {detail.strip()}.") from exc


async def _read_parts(reader: MultipartReader, file_fields: Collection[str], file_limit: int) -> Form:
    form = Form()
    for _ in range(MAX_PARTS):
        part = await reader.next()
        if part is None:
            return form
        if not isinstance(part, BodyPartReader) or not part.name:
            raise InvalidRequest("Nested multipart bodies and unnamed parts are not supported.")
        if part.name in file_fields:
            form.files[part.name] = await _read_file(part, file_limit)
        else:
            _add_field(form.fields, part.name, await _read_text(part))
    raise InvalidRequest(f"The form has more than {MAX_PARTS} parts.")


async def _read_file(part: BodyPartReader, limit: int) -> UploadedFile:
    data = await _read_limited(part, limit, f"The file in '{part.name}' is larger than {_size(limit)}.")
    content_type = part.headers.get("Content-Type", "application/octet-stream")
    return UploadedFile(filename=part.filename or str(part.name), content_type=content_type, data=data)


async def _read_text(part: BodyPartReader) -> str:
    data = await _read_limited(part, FIELD_LIMIT, f"The form field '{part.name}' is too long.")
    try:
        return data.decode(part.get_charset("utf-8"))
    except (UnicodeDecodeError, LookupError) as exc:
        raise InvalidRequest(f"The form field '{part.name}' is not valid text.", param=part.name) from exc


async def _read_limited(part: BodyPartReader, limit: int, too_large: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await part.read_chunk(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large, param=part.name)
        chunks.append(chunk)


def _add_field(fields: JSON, name: str, value: str) -> None:
    if name.endswith("[]"):
        fields.setdefault(name[:-2], []).append(value)
    else:
        fields[name] = value


def _size(limit: int) -> str:
    return f"{limit // MB} MB" if limit % MB == 0 else f"{limit} bytes"
