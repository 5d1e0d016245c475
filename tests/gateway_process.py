"""Starting real `tollway serve` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ADMIN_KEY = "test-admin-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ANTHROPIC_UPSTREAM_KEY = "sk-ant-upstream-test"


def two_backend_config(openai_url: str, anthropic_url: str) -> str:
    """gpt-4o-mini on the OpenAI simulator; claude-sonnet-4-6 on the Anthropic one, passed through."""
    return f"""
providers:
  upstream:
    type: openai
    base_url: {openai_url}
    api_key: ${{UPSTREAM_API_KEY}}
    forward_headers: ["x-sim-*"]
  claude:
    type: anthropic
    base_url: {anthropic_url}
    api_key: ${{ANTHROPIC_UPSTREAM_KEY}}
    forward_headers: ["x-sim-*"]
models:
  - id: upstream:gpt-4o-mini
    aliases: [gpt-4o-mini]
    capabilities: [chat, tools, vision]
    pricing: {{input_per_mtok: 0.15, output_per_mtok: 0.60}}
  - id: claude:claude-sonnet-4-6
    aliases: [claude-sonnet-4-6]
    capabilities: [chat, tools, vision]
    pricing: {{input_per_mtok: 3, output_per_mtok: 15}}
"""


def openai_config(upstream_url: str, *, api_key_env: str = "UPSTREAM_API_KEY", extra: str = "") -> str:
    """The configuration the core issue says must work as written, pointed at a simulator."""
    return f"""
providers:
  upstream:
    type: openai
    base_url: {upstream_url}
    api_key: ${{{api_key_env}}}
    forward_headers: ["x-sim-*"]   # lets tests inject upstream failures
models:
  - id: upstream:gpt-4o-mini
    aliases: [gpt-4o-mini]
    capabilities: [chat, tools, vision]
    context_window: 128000
    pricing: {{input_per_mtok: 0.15, output_per_mtok: 0.60}}
  - id: upstream:text-embedding-3-small
    capabilities: [embeddings]
    pricing: {{input_per_mtok: 0.02}}
  - id: upstream:dall-e-3
    capabilities: [image_generation]
    pricing: {{per_image: 0.04}}
  - id: upstream:whisper-1
    capabilities: [transcription, translation]
    pricing: {{per_audio_second: 0.0001}}
  - id: upstream:tts-1
    capabilities: [speech]
    pricing: {{per_character: 0.000015}}
  - id: upstream:gpt-3.5-turbo-instruct
    capabilities: [completions]
    pricing: {{input_per_mtok: 1.5, output_per_mtok: 2.0}}
routing:
  prefixes: {{"gpt-": upstream}}
{extra}
"""


@dataclass
class GatewayProcess:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    env: dict[str, str]
    admin_key: str = ADMIN_KEY
    _client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self._client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=30
        )

    def admin(self, method: str, path: str, json: Any = None, expect: int | None = None) -> Any:
        response = self._client.request(method, path, json=json)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json()

    def create_key(self, project: str = "default", **fields: Any) -> str:
        projects = self.admin("GET", "/admin/projects")["data"]
        if not any(p["name"] == project for p in projects):
            self.admin("POST", "/admin/projects", {"name": project}, expect=201)
        return str(self.admin("POST", "/admin/keys", {"project": project, **fields}, expect=201)["key"])

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._client.close()


def start_gateway(
    data_dir: Path, config_text: str | None = None, env: dict[str, str] | None = None, port: int | None = None
) -> GatewayProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    full_env = {
        **os.environ,
        "TOLLWAY_DATA_DIR": str(data_dir),
        "TOLLWAY_ADMIN_KEY": ADMIN_KEY,
        "TOLLWAY_PORT": str(port),
        "TOLLWAY_LOCAL_MODELS": "false",
        "UPSTREAM_API_KEY": "sk-upstream-test",
        **(env or {}),
    }
    if config_text is not None:
        config_path = data_dir / "tollway.yaml"
        config_path.write_text(config_text)
        full_env["TOLLWAY_CONFIG"] = str(config_path)
    log_path = data_dir / f"gateway-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tollway", "serve"], env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    gateway = GatewayProcess(f"http://127.0.0.1:{port}", port, process, data_dir, log_path, full_env)
    _wait_ready(gateway)
    return gateway


def _wait_ready(gateway: GatewayProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise RuntimeError(f"tollway exited with {gateway.process.returncode}:\n{gateway.logs()}")
        try:
            if httpx.get(gateway.url + "/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    gateway.stop()
    raise RuntimeError(f"tollway did not become ready in {timeout}s:\n{gateway.logs()}")


@contextmanager
def running_gateway(
    data_dir: Path, config_text: str | None = None, env: dict[str, str] | None = None
) -> Iterator[GatewayProcess]:
    gateway = start_gateway(data_dir, config_text, env)
    try:
        yield gateway
    finally:
        gateway.stop()
