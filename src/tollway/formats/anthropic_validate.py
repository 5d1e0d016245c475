"""Validation of Anthropic Messages requests, worded like Anthropic's own 400s.

Shared by the Anthropic surface (so a caller gets the error Anthropic would give, before any upstream is
called) and by the Anthropic simulator (so tests meet the real API's strictness). Messages follow the
real API's `<loc>: <problem>` style, e.g. "max_tokens: Field required".

What the real API accepts and we therefore accept too: consecutive turns of the same role (the API
combines them) and a first message from the assistant (the API no longer demands a user turn first).
"""

from __future__ import annotations

from typing import Any

from tollway.errors import InvalidRequest

JSON = dict[str, Any]

# Top-level request fields the Messages API knows; anything else is "Extra inputs are not permitted".
MESSAGES_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
        "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
        "container", "mcp_servers", "context_management", "output_config", "cache_control",
        "inference_geo", "speed", "diagnostics", "user_profile_id", "workspace_id",
    }
)  # fmt: skip
# count_tokens takes the prompt only: generation settings such as max_tokens are extra inputs there.
COUNT_TOKENS_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers",
     "context_management", "output_config", "cache_control", "speed"}
)  # fmt: skip

ROLES = ("user", "assistant")
USER_BLOCKS = frozenset({"text", "image", "document", "tool_result", "search_result", "container_upload"})
TOOL_RESULT_BLOCKS = frozenset({"text", "image", "document", "search_result"})  # what a tool_result may hold
ASSISTANT_BLOCKS = frozenset(
    {"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result",
     "web_fetch_tool_result", "code_execution_tool_result", "mcp_tool_use", "mcp_tool_result"}
)  # fmt: skip
TOOL_CHOICES = ("auto", "any", "tool", "none")
NUMBER_RANGES = {"temperature": (0.0, 1.0), "top_p": (0.0, 1.0)}


def fail(loc: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{loc}: {problem}", param=loc)


def validate_messages_request(body: Any, *, count_tokens: bool = False) -> JSON:
    """Checks a Messages (or count_tokens) request body; returns it, or raises `InvalidRequest`."""
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    allowed = COUNT_TOKENS_FIELDS if count_tokens else MESSAGES_FIELDS
    for name in body:
        if name not in allowed:
            raise fail(name, "Extra inputs are not permitted")
    required = ("model", "messages") if count_tokens else ("model", "messages", "max_tokens")
    for name in required:
        if name not in body:
            raise fail(name, "Field required")
    if not isinstance(body["model"], str):
        raise fail("model", "Input should be a valid string")
    if not count_tokens:
        _check_settings(body)
    _check_system(body.get("system"))
    _check_tools(body)
    _check_messages(body["messages"])
    return body


def _check_settings(body: JSON) -> None:
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise fail("max_tokens", "Input should be a valid integer")
    if max_tokens < 1:
        raise fail("max_tokens", "Input should be greater than or equal to 1")
    for name, (low, high) in NUMBER_RANGES.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise fail(name, "Input should be a valid number")
        if not low <= value <= high:
            raise fail(
                name,
                f"Input should be less than or equal to {high:g}"
                if value > high
                else f"Input should be greater than or equal to {low:g}",
            )
    if "stream" in body and not isinstance(body["stream"], bool):
        raise fail("stream", "Input should be a valid boolean")
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        raise fail("stop_sequences", "Input should be a valid list of strings")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise fail("metadata", "Input should be a valid dictionary")
        for name in metadata:
            if name != "user_id":
                raise fail(f"metadata.{name}", "Extra inputs are not permitted")


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise fail("system", "Input should be a valid string or a list of text blocks")
    for i, block in enumerate(system):
        if (
            not isinstance(block, dict)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            raise fail(f"system.{i}", "Input should be a text block")


def _check_tools(body: JSON) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise fail("tools", "Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise fail(f"tools.{i}.name", "Field required")
            is_custom = tool.get("type") in (None, "custom")
            if is_custom and not isinstance(tool.get("input_schema"), dict):
                raise fail(f"tools.{i}.custom.input_schema", "Field required")
    choice = body.get("tool_choice")
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICES:
        expected = ", ".join(f"'{name}'" for name in TOOL_CHOICES)
        raise fail("tool_choice", f"Input tag does not match any of the expected tags: {expected}")
    if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
        raise fail("tool_choice.tool.name", "Field required")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise fail("messages", "Input should be a valid list")
    if not messages:
        raise fail("messages", "at least one message is required")
    for i, message in enumerate(messages):
        _check_message(i, message, is_last=i == len(messages) - 1)
    _check_tool_pairing(messages)


def _check_message(i: int, message: Any, *, is_last: bool) -> None:
    loc = f"messages.{i}"
    if not isinstance(message, dict):
        raise fail(loc, "Input should be a valid dictionary")
    for name in message:
        if name not in ("role", "content"):
            raise fail(f"{loc}.{name}", "Extra inputs are not permitted")
    for name in ("role", "content"):
        if name not in message:
            raise fail(f"{loc}.{name}", "Field required")
    role, content = message["role"], message["content"]
    if role not in ROLES:
        raise fail(f"{loc}.role", "Input should be 'user' or 'assistant'")
    final_assistant = is_last and role == "assistant"
    if isinstance(content, str):
        if not content and not final_assistant:
            raise fail(
                loc,
                "all messages must have non-empty content except for the optional final assistant message",
            )
        if final_assistant and content != content.rstrip():
            raise fail("messages", "final assistant content cannot end with trailing whitespace")
        return
    if not isinstance(content, list):
        raise fail(f"{loc}.content", "Input should be a valid string or a list of content blocks")
    if not content and not final_assistant:
        raise fail(
            loc, "all messages must have non-empty content except for the optional final assistant message"
        )
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    for j, block in enumerate(content):
        _check_block(f"{loc}.content.{j}", block, allowed, role)


def _check_block(loc: str, block: Any, allowed: frozenset[str], role: str) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise fail(f"{loc}.type", "Field required")
    kind = block["type"]
    if kind not in allowed:
        raise fail(f"{loc}.type", f"'{kind}' blocks are not allowed in '{role}' messages")
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise fail(f"{loc}.text", "Field required")
        if not block["text"]:
            raise fail("messages", "text content blocks must be non-empty")
    elif kind == "tool_use":
        for name in ("id", "name"):
            if not isinstance(block.get(name), str):
                raise fail(f"{loc}.{name}", "Field required")
        if not isinstance(block.get("input"), dict):
            raise fail(f"{loc}.input", "Input should be a valid dictionary")
    elif kind == "tool_result":
        _check_tool_result(loc, block, role)
    elif kind in ("image", "document"):
        source = block.get("source")
        if not isinstance(source, dict) or not isinstance(source.get("type"), str):
            raise fail(f"{loc}.source", "Field required")


def _check_tool_result(loc: str, block: JSON, role: str) -> None:
    if not isinstance(block.get("tool_use_id"), str):
        raise fail(f"{loc}.tool_use_id", "Field required")
    if "is_error" in block and not isinstance(block["is_error"], bool):
        raise fail(f"{loc}.is_error", "Input should be a valid boolean")
    content = block.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise fail(f"{loc}.content", "Input should be a valid string or a list of content blocks")
    for i, item in enumerate(content):
        _check_block(f"{loc}.content.{i}", item, TOOL_RESULT_BLOCKS, role)


def _tool_use_ids(message: JSON) -> list[str]:
    content = message["content"]
    if not isinstance(content, list):
        return []
    return [block["id"] for block in content if block.get("type") == "tool_use"]


def _check_tool_pairing(messages: list[JSON]) -> None:
    """Every tool_use must be answered by a tool_result in the very next message, and vice versa."""
    for i, message in enumerate(messages):
        expected = _tool_use_ids(messages[i - 1]) if i > 0 and messages[i - 1]["role"] == "assistant" else []
        content = message["content"] if isinstance(message["content"], list) else []
        answered: set[str] = set()
        for j, block in enumerate(content):
            if block.get("type") != "tool_result":
                continue
            if block["tool_use_id"] not in expected:
                raise fail(
                    f"messages.{i}.content.{j}",
                    f"unexpected `tool_use_id` found in `tool_result` blocks: {block['tool_use_id']}. Each "
                    "`tool_result` block must have a corresponding `tool_use` block in the previous message.",
                )
            answered.add(block["tool_use_id"])
        missing = [tool_id for tool_id in expected if tool_id not in answered]
        if missing:
            raise fail(
                f"messages.{i}",
                f"`tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` "
                "block in the next message.",
            )
