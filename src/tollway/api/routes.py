"""Every route Tollway serves, in one table: the API reference in code form."""

from __future__ import annotations

from aiohttp import web

from tollway.api import health
from tollway.api.admin import keys, projects
from tollway.api.openai import chat, embeddings, models


def add_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get("/health", health.health),
            web.get("/ready", health.ready),
            # OpenAI-compatible surface
            web.get("/v1/models", models.list_models),
            web.get("/v1/models/{model:.+}", models.get_model),
            web.post("/v1/chat/completions", chat.chat_completions),
            web.post("/v1/completions", chat.completions),
            web.post("/v1/embeddings", embeddings.embeddings),
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
        ]
    )
