"""The `tollway` command against the data directory of a running gateway."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.gateway_process import GatewayProcess


def tollway(gateway: GatewayProcess, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "tollway", *args], env=gateway.env, capture_output=True, text=True, timeout=60
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def _chat(gateway: GatewayProcess, key: str) -> int:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(
        gateway.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ).status_code


def test_projects_and_keys(gateway: GatewayProcess) -> None:
    tollway(gateway, "projects", "create", "cli-team", "--rpm", "100")
    listed = json.loads(tollway(gateway, "projects", "list", "--json").stdout)
    assert any(p["name"] == "cli-team" and p["limits"]["rpm"] == 100 for p in listed)
    created = json.loads(
        tollway(gateway, "keys", "create", "--project", "cli-team", "--json", "--spend-cap", "5").stdout
    )
    assert created["key"].startswith("tw-") and created["spend_cap"] == "5"
    huge = tollway(gateway, "keys", "create", "--project", "cli-team", "--spend-cap", "1e12", ok=False)
    assert huge.returncode == 2 and "at most 100,000,000 dollars" in huge.stderr
    plain = tollway(gateway, "keys", "create", "--project", "cli-team")
    assert plain.stdout.strip().startswith("tw-") and "shown once" in plain.stderr
    keys = tollway(gateway, "keys", "list", "--json").stdout
    assert created["key"] not in keys and created["prefix"] in keys


def test_revoke_reaches_the_running_server_at_once(gateway: GatewayProcess) -> None:
    tollway(gateway, "projects", "create", "cli-revoke")
    created = json.loads(tollway(gateway, "keys", "create", "--project", "cli-revoke", "--json").stdout)
    assert _chat(gateway, created["key"]) == 200  # now cached by the server
    tollway(gateway, "keys", "revoke", created["id"])
    assert _chat(gateway, created["key"]) == 401


def test_credits_grant_and_show_through_the_running_server(gateway: GatewayProcess) -> None:
    tollway(gateway, "projects", "create", "cli-credits")
    assert (
        "balance 12.5" in tollway(gateway, "credits", "grant", "cli-credits", "12.5", "--note", "test").stdout
    )
    assert "balance 12.5" in tollway(gateway, "credits", "show", "cli-credits").stdout
    bad = tollway(gateway, "credits", "grant", "cli-credits", "lots", ok=False)
    assert bad.returncode == 2 and "number of dollars" in bad.stderr
    huge = tollway(gateway, "credits", "grant", "cli-credits", "1e12", ok=False)
    assert huge.returncode == 2 and "at most 100,000,000 dollars" in huge.stderr


def test_usage_table_and_models(gateway: GatewayProcess) -> None:
    key = gateway.create_key("cli-usage")
    assert _chat(gateway, key) == 200
    gateway.admin("GET", "/admin/usage")  # flushes the ledger writer
    out = tollway(gateway, "usage", "--project", "cli-usage", "--group-by", "model").stdout
    assert "upstream:gpt-4o-mini" in out
    models = json.loads(tollway(gateway, "models", "--json").stdout)
    assert {
        "id": "upstream:gpt-4o-mini",
        "capabilities": ["chat", "tools", "vision"],
        "status": "configured",
    } in models


@pytest.mark.parametrize("args", [["keys", "create", "--project", "nope"], ["keys", "revoke", "key_missing"]])
def test_errors_are_one_line(gateway: GatewayProcess, args: list[str]) -> None:
    result = tollway(gateway, *args, ok=False)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
