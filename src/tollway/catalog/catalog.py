"""Which models exist and how a name a caller sends resolves to a provider and an upstream model.

Resolution order: exact catalog id, alias, `provider:model` for a configured provider, then a bare name
whose prefix is routed to a provider (`routing.prefixes`). Results are memoised: resolving is on the hot
path and the catalog only changes at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tollway.errors import InvalidRequest, ModelNotFound
from tollway.types import Limits, Operation, Pricing, Target


@dataclass(slots=True, frozen=True)
class CatalogModel:
    id: str
    provider: str
    upstream_model: str
    capabilities: frozenset[str]
    aliases: tuple[str, ...] = ()
    context_window: int | None = None
    max_output_tokens: int | None = None
    pricing: Pricing = Pricing()
    limits: Limits = Limits()
    description: str | None = None
    listed: bool = True  # False for names reached through a prefix or provider:model but not configured
    _target: Target | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Built once: the target is handed out on every call.
        target = Target(
            model_id=self.id,
            provider=self.provider,
            upstream_model=self.upstream_model,
            pricing=self.pricing,
            context_window=self.context_window,
        )
        object.__setattr__(self, "_target", target)

    def target(self) -> Target:
        assert self._target is not None
        return self._target

    def supports(self, operation: Operation) -> bool:
        return not self.listed or operation.value in self.capabilities


@dataclass(slots=True)
class Catalog:
    models: list[CatalogModel]
    providers: frozenset[str]
    prefixes: dict[str, str] = field(default_factory=dict)
    _by_name: dict[str, CatalogModel] = field(default_factory=dict, init=False)
    _memo: dict[str, CatalogModel] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for model in self.models:
            self._by_name[model.id] = model
        for model in self.models:
            for alias in model.aliases:
                self._by_name.setdefault(alias, model)
        # Longest prefix first, so "gpt-4o-" can override "gpt-".
        self.prefixes = dict(sorted(self.prefixes.items(), key=lambda item: -len(item[0])))

    def get(self, model_id: str) -> CatalogModel | None:
        return self._by_name.get(model_id)

    def listed(self) -> list[CatalogModel]:
        return [model for model in self.models if model.listed]

    def with_capability(self, operation: Operation) -> list[CatalogModel]:
        return [model for model in self.models if operation.value in model.capabilities]

    def lookup(self, name: str) -> CatalogModel:
        """The model a caller's name refers to; ModelNotFound says how to list models."""
        found = self._memo.get(name)
        if found is None:
            found = self._lookup_uncached(name)
            if len(self._memo) < 10_000:  # bounded: names come from callers
                self._memo[name] = found
        return found

    def resolve(self, name: str, operation: Operation) -> CatalogModel:
        model = self.lookup(name)
        if not model.supports(operation):
            raise InvalidRequest(self._capability_message(model, operation), param="model")
        return model

    def _lookup_uncached(self, name: str) -> CatalogModel:
        if not name:
            raise InvalidRequest("You must provide a model parameter.", param="model")
        known = self._by_name.get(name)
        if known is not None:
            return known
        provider, sep, upstream = name.partition(":")
        if sep and provider in self.providers and upstream:
            return _unlisted(name, provider, upstream)
        for prefix, routed_provider in self.prefixes.items():
            if name.startswith(prefix):
                return self._by_name.get(f"{routed_provider}:{name}") or _unlisted(
                    f"{routed_provider}:{name}", routed_provider, name
                )
        raise ModelNotFound(
            f"The model '{name}' does not exist or is not configured. "
            "List the available models with GET /v1/models.",
            param="model",
        )

    def _capability_message(self, model: CatalogModel, operation: Operation) -> str:
        able = _ids(self.with_capability(operation))
        where = f" Models that support it: {able}." if able else " No configured model supports it."
        return f"The model '{model.id}' does not support {operation.value}.{where}"


def _unlisted(model_id: str, provider: str, upstream: str) -> CatalogModel:
    return CatalogModel(
        id=model_id, provider=provider, upstream_model=upstream, capabilities=frozenset(), listed=False
    )


def _ids(models: Iterable[CatalogModel]) -> str:
    return ", ".join(model.id for model in models)
