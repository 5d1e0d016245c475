"""Stored Responses API objects: what `GET /v1/responses/{id}` returns and `previous_response_id` continues.

Each row keeps the response object as the caller saw it and the chat conversation up to and including it,
so a continuation is one primary-key read, never a walk back along the chain. Every lookup is scoped to the
project that created the response: another project's id reads as unknown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollway.store.models import StoredResponse

JSON = dict[str, Any]
Sessions = async_sessionmaker[AsyncSession]


async def save_response(sessions: Sessions, project_id: str, response: JSON, history: list[JSON]) -> None:
    row = StoredResponse(
        id=response["id"],
        project_id=project_id,
        created_at=datetime.fromtimestamp(response["created_at"], UTC),
        model=str(response.get("model") or ""),
        response=response,
        history={"messages": history},
    )
    async with sessions() as session:
        session.add(row)
        await session.commit()


async def load_response(sessions: Sessions, project_id: str, response_id: str) -> StoredResponse | None:
    async with sessions() as session:
        query = select(StoredResponse).where(
            StoredResponse.id == response_id, StoredResponse.project_id == project_id
        )
        return await session.scalar(query)


async def delete_response(sessions: Sessions, project_id: str, response_id: str) -> bool:
    """Deletes a stored response; False when the project has none by that id."""
    async with sessions() as session:
        result = await session.execute(
            delete(StoredResponse).where(
                StoredResponse.id == response_id, StoredResponse.project_id == project_id
            )
        )
        await session.commit()
    return bool(getattr(result, "rowcount", 0))


def history_messages(row: StoredResponse) -> list[JSON]:
    messages = row.history.get("messages")
    return list(messages) if isinstance(messages, list) else []
