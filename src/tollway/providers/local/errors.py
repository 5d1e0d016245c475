"""Errors raised by the local engines, grafted onto Tollway's one error tree.

    UpstreamUnavailable (503)
    └── LocalModelUnavailable     a package the model needs is not installed
    InvalidRequest (400)
    └── LocalModelUnsupported     the model cannot do what was asked (language, format, size)
    UnsupportedMediaType (415)
    └── LocalMediaUnsupported     the input bytes are in a format the engine cannot read

The engines raise these from synchronous code; the provider adapter lets them propagate unchanged.
"""

from __future__ import annotations

from tollway.errors import InvalidRequest, UnsupportedMediaType, UpstreamUnavailable

BACKEND = "local"


class LocalModelUnavailable(UpstreamUnavailable):
    """A local model cannot run because a package it needs is missing (install it, then restart)."""

    def __init__(self, model_id: str, missing_package: str, install_hint: str) -> None:
        message = (
            f"local model {model_id!r} is unavailable: package {missing_package!r} is not installed "
            f"({install_hint})"
        )
        super().__init__(message, backend=BACKEND)
        self.model_id = model_id
        self.missing_package = missing_package
        self.install_hint = install_hint


class LocalModelUnsupported(InvalidRequest):
    """The request is valid in general but this offline model cannot serve it."""

    def __init__(self, model_id: str, reason: str, *, param: str | None = None) -> None:
        super().__init__(f"local model {model_id!r}: {reason}", param=param)
        self.model_id = model_id


class LocalMediaUnsupported(UnsupportedMediaType):
    """The input media could not be decoded or is in a format the engine refuses."""

    def __init__(self, model_id: str, reason: str, *, param: str | None = None) -> None:
        super().__init__(f"local model {model_id!r}: {reason}", param=param)
        self.model_id = model_id
