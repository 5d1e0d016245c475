from __future__ import annotations

from tollway.api.errors import render_error, surface_for_path
from tollway.errors import InsufficientCredit, RateLimited, UpstreamStatus, UpstreamUnavailable
from tollway.types import Surface


def test_surface_by_path() -> None:
    assert surface_for_path("/v1/messages") is Surface.ANTHROPIC
    assert surface_for_path("/v1/chat/completions") is Surface.OPENAI
    assert surface_for_path("/infra/ai/models") is Surface.NATIVE


def test_openai_shape_passes_upstream_errors_through() -> None:
    exc = UpstreamStatus(
        "bad field",
        backend="up",
        upstream_status=400,
        upstream_type="invalid_request_error",
        upstream_code="x",
        param="p",
    )
    body = render_error(exc, Surface.OPENAI, "req_1")
    assert body == {
        "error": {
            "message": "bad field",
            "type": "invalid_request_error",
            "param": "p",
            "code": "x",
            "backend": "up",
        }
    }
    assert exc.http_status == 400


def test_anthropic_shape_and_types() -> None:
    assert render_error(UpstreamUnavailable("down", backend="b"), Surface.ANTHROPIC, "r") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "down"},
    }
    assert (
        render_error(InsufficientCredit("no money"), Surface.ANTHROPIC, "r")["error"]["type"]
        == "billing_error"
    )


def test_native_envelope_and_retry_after() -> None:
    exc = RateLimited("slow down", retry_after=1.2)
    assert exc.headers["retry-after"] == "2"
    body = render_error(exc, Surface.NATIVE, "req_9")
    assert (
        body["status"] == "error"
        and body["meta"] == {"request_id": "req_9"}
        and body["error"]["code"] == "rate_limit_exceeded"
    )
