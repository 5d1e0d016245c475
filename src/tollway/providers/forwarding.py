"""Which of the caller's headers a provider passes on upstream (`forward_headers` in its config).

Off by default: callers' headers may carry their own credentials. Rules are header names, or prefixes
ending in `*` (e.g. `openai-beta`, `x-trace-*`); `authorization`, `x-api-key` and hop-by-hop headers are
never forwarded whatever the rules say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NEVER = frozenset(
    {
        "authorization",
        "x-api-key",
        "host",
        "content-length",
        "content-type",
        "connection",
        "transfer-encoding",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
    }
)


@dataclass(frozen=True, slots=True)
class ForwardRules:
    names: frozenset[str]
    prefixes: tuple[str, ...]

    def allows(self, name: str) -> bool:
        lowered = name.lower()
        if lowered in NEVER:
            return False
        return lowered in self.names or lowered.startswith(self.prefixes)


def forward_rules(config: object) -> ForwardRules | None:
    if not config:
        return None
    if not isinstance(config, list) or not all(isinstance(item, str) for item in config):
        raise ValueError("forward_headers must be a list of header names or 'prefix-*' patterns")
    names = frozenset(item.lower() for item in config if not item.endswith("*"))
    prefixes = tuple(item[:-1].lower() for item in config if item.endswith("*"))
    return ForwardRules(names, prefixes)


def forwarded(headers: Mapping[str, str], rules: ForwardRules) -> dict[str, str]:
    return {name: value for name, value in headers.items() if rules.allows(name)}
