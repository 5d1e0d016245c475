"""Request validation for the OpenAI simulator, written as parameter tables, one per endpoint.

A field missing from an endpoint's table (and from the configured extra fields) is refused with OpenAI's
"Unrecognized request argument supplied"; each given field runs its check; ``null`` means "not given", as
upstream. ``validate_*`` add the cross-field rules and return the requested model.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from tollway.simulators import openai_errors as err
from tollway.simulators import openai_messages as chat
from tollway.simulators.openai_checks import (
    Check,
    anything,
    array,
    boolean,
    check_fields,
    enum,
    integer,
    is_int,
    metadata,
    modalities,
    number,
    obj,
    require_model,
    require_stream_for_options,
    stop,
    stream_options,
    string,
)

_SHARED: dict[str, Check] = {
    "model": anything,  # checked by require_model, with its own wording
    "frequency_penalty": number(-2, 2),
    "presence_penalty": number(-2, 2),
    "logit_bias": obj,
    "n": integer(1, 128),
    "seed": integer(),
    "stop": stop,
    "stream": boolean,
    "stream_options": stream_options,
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "user": string,
}

CHAT_FIELDS: dict[str, Check] = {
    **_SHARED,
    "messages": chat.messages,
    "audio": obj,
    "function_call": anything,
    "functions": array,
    "logprobs": boolean,
    "top_logprobs": integer(0, 20),
    "max_tokens": integer(1),
    "max_completion_tokens": integer(1),
    "metadata": metadata,
    "modalities": modalities,
    "moderation": anything,
    "parallel_tool_calls": boolean,
    "prediction": obj,
    "prompt_cache_key": string,
    "prompt_cache_options": anything,
    "prompt_cache_retention": anything,
    "reasoning_effort": enum("none", "minimal", "low", "medium", "high", "xhigh"),
    "response_format": chat.response_format,
    "safety_identifier": string,
    "service_tier": enum("auto", "default", "flex", "scale", "priority"),
    "store": boolean,
    "tool_choice": chat.tool_choice,
    "tools": chat.tools,
    "verbosity": enum("low", "medium", "high"),
    "web_search_options": obj,
}


def prompt(param: str, value: Any) -> None:
    if isinstance(value, str):
        return
    array(param, value)
    if not value:
        raise err.empty_array(param)
    if all(is_int(v) for v in value):
        return
    for i, item in enumerate(value):
        if not isinstance(item, str) and not (isinstance(item, list) and all(is_int(v) for v in item)):
            raise err.invalid_type(f"{param}[{i}]", "a string or an array of integers", item)


COMPLETION_FIELDS: dict[str, Check] = {
    **_SHARED,
    "prompt": prompt,
    "best_of": integer(0, 20),
    "echo": boolean,
    "logprobs": integer(0, 5),
    "max_tokens": integer(0),
    "suffix": string,
}


def embedding_input(param: str, value: Any) -> None:
    if isinstance(value, str):
        _nonempty_input(value)
        return
    array(param, value)
    if not value or len(value) > 2048:
        raise _bad_input()
    if all(is_int(v) for v in value):
        return
    for item in value:
        if isinstance(item, str):
            _nonempty_input(item)
        elif not (isinstance(item, list) and item and all(is_int(v) for v in item)):
            raise _bad_input()


def _nonempty_input(text: str) -> None:
    if not text:
        raise _bad_input()


def _bad_input() -> err.SimError:
    return err.invalid(
        "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
    )


EMBEDDING_FIELDS: dict[str, Check] = {
    "model": anything,
    "input": embedding_input,
    "dimensions": integer(1),
    "encoding_format": enum("float", "base64"),
    "user": string,
}


def validate_chat(body: Mapping[str, Any], extra: Collection[str]) -> str:
    check_fields(body, CHAT_FIELDS, extra)
    model = require_model(body)
    if body.get("messages") is None:
        raise err.missing("messages")
    require_stream_for_options(body)
    chat.check_tool_choice_against_tools(body)
    chat.check_logprobs(body)
    chat.check_json_mode_mentions_json(body)
    return model


def validate_completion(body: Mapping[str, Any], extra: Collection[str]) -> str:
    check_fields(body, COMPLETION_FIELDS, extra)
    model = require_model(body)
    if body.get("prompt") is None:
        raise err.missing("prompt")
    require_stream_for_options(body)
    best_of, n = body.get("best_of"), body.get("n") or 1
    if best_of is not None and best_of < n:
        raise err.invalid("best_of must be greater than or equal to n", "best_of")
    return model


def validate_embeddings(body: Mapping[str, Any], extra: Collection[str]) -> str:
    check_fields(body, EMBEDDING_FIELDS, extra)
    model = require_model(body)
    if body.get("input") is None:
        raise err.missing("input")
    return model
