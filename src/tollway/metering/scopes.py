"""Which scopes (key, project, (project, model)) a call is limited on, remembered per (key, model).

Both meters need the same answer on every admit: the scopes whose `Limits` have any limit, each with
a meter-specific handle (an in-memory window, a Redis key name). Building it costs three names and three
lookups; the memo costs one lookup while the key's, project's and model's `Limits` stay the same objects
(the key cache hands out the same ones until a change, and a change makes new ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from tollway.metering.protocol import Admission
from tollway.types import Limits

H = TypeVar("H")  # the meter's handle on a scope
ScopeName = tuple[str, ...]  # ("k", key) | ("p", project) | ("m", project, model)

_BOUND = 100_000  # entries kept, whatever callers do


class ScopeMemo(Generic[H]):
    def __init__(self, handle: Callable[[ScopeName], H]):
        self._handle = handle
        self._known: dict[tuple[str, str], tuple[Limits, Limits, Limits, list[tuple[H, Limits]]]] = {}

    def limited(self, admission: Admission) -> list[tuple[H, Limits]]:
        """(handle, limits) of each scope with a limit, key first; the list is shared: read it only."""
        route = (admission.key_id, admission.model_id)  # a key belongs to one project
        known = self._known.get(route)
        key, project, model = admission.key_limits, admission.project_limits, admission.model_limits
        if known is not None and known[0] is key and known[1] is project and known[2] is model:
            return known[3]
        named: tuple[tuple[ScopeName, Limits], ...] = (
            (("k", admission.key_id), key),
            (("p", admission.project_id), project),
            (("m", admission.project_id, admission.model_id), model),
        )
        scopes = [(self._handle(name), limits) for name, limits in named if limits.any]
        if len(self._known) >= _BOUND:
            self._known.clear()
        self._known[route] = (key, project, model, scopes)
        return scopes


def too_large(admission: Admission) -> str | None:
    """Why a call refused by a window can never be admitted, however long it waits: it reserves more
    tokens than some scope's TPM limit holds in a whole window. None when waiting can help. Only asked
    once a call is refused, so it costs admitted calls nothing."""
    scopes = (
        (admission.key_limits, "the API key"),
        (admission.project_limits, "the project"),
        (admission.model_limits, f"model {admission.model_id} in the project"),
    )
    for limits, scope in scopes:
        if limits.tpm is not None and admission.tokens > limits.tpm:
            return (
                f"Request too large: it reserves {admission.tokens:,} tokens (the prompt, estimated, plus "
                f"the most output it allows) but {scope} is limited to {limits.tpm:,} tokens per minute, "
                "so it can never be admitted. Lower max_tokens (or max_completion_tokens), or shorten "
                "the prompt."
            )
    return None
