"""Every route Tollway serves, in one table: the API reference in code form."""

from __future__ import annotations

from aiohttp import web

from tollway.api import anthropic, health
from tollway.api.admin import credits, keys, projects, usage
from tollway.api.middleware import Handler
from tollway.api.native import cost
from tollway.api.openai import audio, chat, embeddings, images, models, moderations, rerank, responses, speech


def add_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get("/health", health.health),
            web.get("/ready", health.ready),
            web.get("/metrics", health.metrics),
            # OpenAI-compatible surface
            web.get("/v1/models", models.list_models),
            web.get("/v1/models/{model:.+}", models.get_model),
            web.post("/v1/chat/completions", chat.chat_completions),
            web.post("/v1/completions", chat.completions),
            web.post("/v1/embeddings", embeddings.embeddings),
            web.post("/v1/rerank", rerank.rerank),
            web.post("/v1/moderations", moderations.moderations),
            web.post("/v1/audio/transcriptions", audio.transcriptions),
            web.post("/v1/audio/translations", audio.translations),
            web.post("/v1/audio/speech", speech.speech),
            web.get("/v1/audio/voices", speech.voices),
            web.post("/v1/images/generations", images.generations),
            web.post("/v1/images/upscale", images.upscale),
            web.post("/v1/responses", responses.create_response),
            web.get("/v1/responses/{response_id}", responses.get_response),
            web.delete("/v1/responses/{response_id}", responses.remove_response),
            # Anthropic-compatible surface
            web.post("/v1/messages", anthropic.messages),
            web.post("/v1/messages/count_tokens", anthropic.count_tokens),
            # native surface: cost tools (and their /v1/ai aliases)
            *_both("/tokens/count", cost.count_tokens),
            *_both("/cost/estimate", cost.estimate_cost),
            *_both("/cost/compare", cost.compare_cost),
            # control plane
            web.post("/admin/projects", projects.create_project),
            web.get("/admin/projects", projects.list_projects),
            web.get("/admin/projects/{project}", projects.get_project),
            web.patch("/admin/projects/{project}", projects.patch_project),
            web.post("/admin/keys", keys.create_key),
            web.get("/admin/keys", keys.list_keys),
            web.get("/admin/keys/{key_id}", keys.get_key),
            web.patch("/admin/keys/{key_id}", keys.patch_key),
            web.delete("/admin/keys/{key_id}", keys.revoke_key),
            web.post("/admin/projects/{project}/credits", credits.add_credits),
            web.get("/admin/usage", usage.list_usage),
        ]
    )


def _both(path: str, handler: Handler) -> list[web.RouteDef]:
    """A native route under /infra/ai and its /v1/ai alias."""
    return [web.post("/infra/ai" + path, handler), web.post("/v1/ai" + path, handler)]
