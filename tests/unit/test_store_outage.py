"""`errors.is_store_outage`: which errors mean the database or Redis is away (a 503, one log line), as
against a bug (a 500, a traceback)."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
import redis.exceptions
from sqlalchemy.exc import OperationalError

from tollway.errors import InvalidRequest, is_store_outage


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        sqlite3.OperationalError("database is locked"),
        OperationalError("SELECT 1", {}, ConnectionRefusedError()),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
    ],
)
def test_stores_away_are_outages(error: BaseException) -> None:
    assert is_store_outage(error)


@pytest.mark.parametrize(
    "error",
    [ValueError("bad"), KeyError("x"), redis.exceptions.ResponseError("NOGROUP"), InvalidRequest("no")],
)
def test_bugs_and_refusals_are_not(error: BaseException) -> None:
    assert not is_store_outage(error)
