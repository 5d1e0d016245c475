"""Reading the usage ledger for the admin API and exports: rows, per-group totals, CSV and JSON lines.

Works on SQLite and PostgreSQL. Costs stay exact decimals (money columns are integer 1e-10 units).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import orjson
from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tollway.metering import ledger
from tollway.store.models import UsageRow

GroupBy = Literal["model", "key", "day"]
_COLUMNS = [column.name for column in UsageRow.__table__.columns]


async def usage_rows(
    session: AsyncSession,
    *,
    project_id: str | None = None,
    key_id: str | None = None,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Ledger rows, newest first. `model` matches the model served or the one requested;
    `since` is inclusive, `until` exclusive."""
    query = _filtered(select(UsageRow), project_id, key_id, model, since, until)
    query = query.order_by(UsageRow.created_at.desc(), UsageRow.request_id).limit(limit).offset(offset)
    rows = (await session.execute(query)).scalars()
    return [_as_dict(row) for row in rows]


async def usage_grouped(
    session: AsyncSession,
    *,
    group_by: GroupBy,
    project_id: str | None = None,
    key_id: str | None = None,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Per model, key or UTC day: requests, tokens, cost, errors (status >= 400), mean latency."""
    group = _group_expression(group_by, _dialect(session)).label("group")
    query = select(
        group,
        func.count().label("requests"),
        func.coalesce(func.sum(UsageRow.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(UsageRow.cached_input_tokens), 0).label("cached_input_tokens"),
        func.coalesce(func.sum(UsageRow.output_tokens), 0).label("output_tokens"),
        ledger.cost_sum().label("cost"),
        func.coalesce(func.sum(case((UsageRow.status >= 400, 1), else_=0)), 0).label("errors"),
        func.avg(UsageRow.latency_ms).label("avg_latency_ms"),
    )
    query = _filtered(query, project_id, key_id, model, since, until).group_by(group).order_by(group)
    totals = [dict(row._mapping) for row in await session.execute(query)]
    for total in totals:
        total[group_by] = total.pop("group")
        total["cost"] = total["cost"] or Decimal(0)
        total["avg_latency_ms"] = round(float(total["avg_latency_ms"] or 0.0), 3)
    return totals


def _group_expression(group_by: GroupBy, dialect: str) -> ColumnElement[Any]:
    if group_by == "model":
        return func.coalesce(UsageRow.model_served, UsageRow.model_requested)
    if group_by == "key":
        return UsageRow.__table__.c.key_id
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", UsageRow.created_at), "YYYY-MM-DD")
    return func.substr(UsageRow.created_at, 1, 10)  # SQLite keeps UTC times as ISO text


def _filtered(
    query: Select[Any],
    project_id: str | None,
    key_id: str | None,
    model: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    if project_id is not None:
        query = query.where(UsageRow.project_id == project_id)
    if key_id is not None:
        query = query.where(UsageRow.key_id == key_id)
    if model is not None:
        query = query.where(or_(UsageRow.model_served == model, UsageRow.model_requested == model))
    if since is not None:
        query = query.where(UsageRow.created_at >= _utc(since))
    if until is not None:
        query = query.where(UsageRow.created_at < _utc(until))
    return query


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _as_dict(row: UsageRow) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in _COLUMNS}
    values["created_at"] = _utc(values["created_at"])  # SQLite hands times back without a zone
    return values


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV with a header row; decimals written exactly, times in ISO 8601."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _text(v) for k, v in row.items()})
    return out.getvalue()


def rows_to_jsonl(rows: list[dict[str, Any]]) -> str:
    """One JSON object a line; decimals as strings so no digit is lost."""
    return "".join(orjson.dumps(row, default=_json_default).decode() + "\n" for row in rows)


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")  # fixed point: str() would write 3E-10
    return "" if value is None else value


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot serialise {type(value).__name__}")
