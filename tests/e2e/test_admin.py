"""The admin API's projects and keys, end to end on a real gateway: changes apply, and bad input is a 4xx
in the OpenAI error shape, never a 500."""

from __future__ import annotations

from tests.gateway_process import GatewayProcess


def test_projects_are_created_renamed_and_limited(gateway: GatewayProcess) -> None:
    project = gateway.admin("POST", "/admin/projects", {"name": "admin-a", "rpm": 5}, expect=201)
    assert project["limits"]["rpm"] == 5 and project["credit_enforced"] is False
    gateway.admin("POST", "/admin/projects", {"name": "admin-b"}, expect=201)
    patched = gateway.admin(
        "PATCH",
        f"/admin/projects/{project['id']}",
        {"name": "  admin-c  ", "rpm": None, "tpm": 100, "credit_enforced": True},
        expect=200,
    )
    assert patched["name"] == "admin-c" and patched["credit_enforced"] is True
    assert patched["limits"]["rpm"] is None and patched["limits"]["tpm"] == 100  # null removes a limit
    shown = gateway.admin("GET", "/admin/projects/admin-c", expect=200)
    assert shown["id"] == project["id"] and shown["limits"]["tpm"] == 100
    listed = {p["name"] for p in gateway.admin("GET", "/admin/projects", expect=200)["data"]}
    assert {"admin-b", "admin-c"} <= listed and "admin-a" not in listed


def test_project_patch_refuses_what_it_cannot_apply(gateway: GatewayProcess) -> None:
    project = gateway.admin("POST", "/admin/projects", {"name": "admin-d"}, expect=201)
    gateway.admin("POST", "/admin/projects", {"name": "admin-e"}, expect=201)
    path = f"/admin/projects/{project['id']}"
    taken = gateway.admin("PATCH", path, {"name": "admin-e"}, expect=409)
    assert taken["error"]["param"] == "name" and "already exists" in taken["error"]["message"]
    for field in ("name", "credit_enforced"):  # null would mean "none", which neither can be
        refused = gateway.admin("PATCH", path, {field: None}, expect=400)
        assert refused["error"]["param"] == field and "must not be null" in refused["error"]["message"]
    blank = gateway.admin("PATCH", path, {"name": "   "}, expect=400)
    assert blank["error"]["param"] == "name"
    assert gateway.admin("PATCH", path, {"rpm": 0}, expect=400)["error"]["param"] == "rpm"
    assert gateway.admin("PATCH", path, {"colour": "red"}, expect=400)["error"]["param"] == "colour"
    assert gateway.admin("GET", path, expect=200)["name"] == "admin-d"  # nothing was applied


def test_keys_take_spend_caps_within_what_money_holds(gateway: GatewayProcess) -> None:
    gateway.admin("POST", "/admin/projects", {"name": "admin-keys"}, expect=201)
    key = gateway.admin("POST", "/admin/keys", {"project": "admin-keys", "spend_cap": "12.5"}, expect=201)
    assert key["spend_cap"] == "12.5" and key["key"].startswith("tw-")
    patched = gateway.admin("PATCH", f"/admin/keys/{key['id']}", {"spend_cap": "100000000"}, expect=200)
    assert patched["spend_cap"] == "100000000"
    for cap in ("100000000.01", "1e30", "0.00000000001", "-1"):
        refused = gateway.admin("PATCH", f"/admin/keys/{key['id']}", {"spend_cap": cap}, expect=400)
        assert refused["error"]["param"] == "spend_cap", refused
    assert gateway.admin("GET", f"/admin/keys/{key['id']}", expect=200)["spend_cap"] == "100000000"
