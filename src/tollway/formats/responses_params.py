"""The Responses create request's parameters: which are copied to chat, translated, kept by the gateway
or refused, and the check of a request's top level against them (`responses` translates the rest)."""

from __future__ import annotations

from tollway.errors import InvalidRequest
from tollway.types import JSON

# Responses parameters copied to chat as they are, under the chat name.
RENAMED_PARAMS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_output_tokens": "max_completion_tokens",
    "user": "user",
    "service_tier": "service_tier",
    "safety_identifier": "safety_identifier",
    "prompt_cache_key": "prompt_cache_key",
    "prompt_cache_retention": "prompt_cache_retention",
}
# Parameters with their own translation below, and those kept by the gateway (echoed, stored, never sent).
TRANSLATED_PARAMS = {
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "reasoning",
    "stream",
    "parallel_tool_calls",
    "include",
    "top_logprobs",
}
GATEWAY_PARAMS = {
    "metadata",
    "store",
    "previous_response_id",
    "truncation",
    "stream_options",
    "max_tool_calls",
    "prompt_cache_options",
}
# Known parameters the gateway cannot honour: refused when set, with the reason, rather than ignored.
UNSUPPORTED_PARAMS = {
    "background": "background mode is not supported by this gateway; omit 'background' or set it to false.",
    "conversation": "conversation objects are not supported by this gateway; use 'previous_response_id'.",
    "prompt": "prompt templates are not supported by this gateway; send 'instructions' and 'input'.",
    "moderation": "moderation of responses is not supported by this gateway; call /v1/moderations.",
    "context_management": "context management is not supported by this gateway; omit 'context_management'.",
}
KNOWN_PARAMS = set(RENAMED_PARAMS) | TRANSLATED_PARAMS | GATEWAY_PARAMS | set(UNSUPPORTED_PARAMS)
# Parameters the gateway reads as a container itself (others go to the upstream, which judges them).
OBJECT_PARAMS = frozenset({"reasoning", "text", "metadata", "stream_options"})
ARRAY_PARAMS = frozenset({"include", "tools"})


def check_params(body: JSON) -> None:
    """The request's top level: an object, every parameter known, none the gateway refuses, and each
    it reads as a container itself of the right kind. `InvalidRequest` names the first that is not."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    for name, value in body.items():
        if name not in KNOWN_PARAMS:
            raise InvalidRequest(f"Unknown parameter: '{name}'.", param=name)
        if name in UNSUPPORTED_PARAMS and value not in (None, False, [], {}):
            raise InvalidRequest(f"'{name}' is not supported: {UNSUPPORTED_PARAMS[name]}", param=name)
        if value is not None and (
            (name in OBJECT_PARAMS and not isinstance(value, dict))
            or (name in ARRAY_PARAMS and not isinstance(value, list))
        ):
            kind = "an object" if name in OBJECT_PARAMS else "an array"
            raise InvalidRequest(f"Invalid type for '{name}': expected {kind}.", param=name)
