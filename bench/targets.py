"""How to start each target the load is pointed at, and how to tear it down.

Targets (see TARGETS): the mock called directly, the floor proxy, Tollway in four set-ups and,
optionally, LiteLLM's proxy from its own virtualenv. Pinned gateways run under `taskset -c 1`;
the load generator, the mocks and this orchestrator stay on CPU 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import backing
from bench.measure import wait_ready

ADMIN_KEY = "bench-admin-key-0123456789"
LITELLM_KEY = "sk-bench-master-1234"
LITELLM_OFFLINE = {  # keep LiteLLM from fetching price maps and presets at start
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_TELEMETRY": "False",
}
TARGETS: dict[str, str] = {
    "direct": "the load generator calls the mock upstream itself (the zero of added latency)",
    "floor": "bare pass-through proxy: aiohttp server + pooled aiohttp client, uvloop, no features",
    "tollway": "Tollway, embedded (SQLite, in-process limits), metering on: keys, limits, credits, ledger",
    "tollway-nometer": "Tollway, embedded, TOLLWAY_METERING=false (keys still checked)",
    "tollway-scaleout": "Tollway, PostgreSQL + Redis, metering on",
    "tollway-w2": "Tollway, PostgreSQL + Redis, metering on, --workers 2, not pinned",
    "litellm": "LiteLLM proxy, one worker, no database, master key",
}
# Settings from the caller's shell that would make a target share state with another, or change its set-up.
INHERITED_VARS_DROPPED = (
    "TOLLWAY_DATABASE_URL",
    "TOLLWAY_REDIS_URL",
    "TOLLWAY_REDIS_PREFIX",
    "TOLLWAY_WORKERS",
    "TOLLWAY_PORT",
)
PINNED = {"floor", "tollway", "tollway-nometer", "tollway-scaleout", "litellm"}


@dataclass
class BenchEnv:
    """What every target needs to know about this run."""

    run_dir: Path
    mock_url: str  # http://127.0.0.1:PORT, no /v1
    paced_url: str
    slow_url: str  # the mock that answers after a random delay (workload chat-latency)
    python: str
    tollway_bin: str
    litellm_venv: Path | None
    pin: bool
    cores: int
    pg_admin_url: str
    redis_url: str

    def gateway_prefix(self, target: str) -> list[str]:
        if not self.pin:
            return []
        cpus = "1" if target in PINNED else f"0-{self.cores - 1}"
        return ["taskset", "-c", cpus]

    def load_prefix(self) -> list[str]:
        return ["taskset", "-c", "0"] if self.pin else []


@dataclass
class Running:
    name: str
    base: str
    paced_base: str
    key: str
    slow_base: str = ""  # direct: the slow mock; "" = base (a gateway routes by model)
    proc: subprocess.Popen[bytes] | None = None
    startup_s: float | None = None
    project_id: str | None = None  # Tollway: the bench project, to read its spend afterwards
    log_path: Path | None = None
    backing_pids: list[int] = field(default_factory=list)  # PostgreSQL and Redis, for scale-out
    notes: list[str] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def base_for(self, upstream: str) -> str:
        """Where a workload whose model lives on `upstream` ("mock", "paced", "slow") sends requests."""
        return {"paced": self.paced_base, "slow": self.slow_base or self.base}.get(upstream, self.base)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self._count_log_errors()
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as exc:  # a failed cleanup must not hide the results
                self.notes.append(f"cleanup failed: {exc}")

    def _count_log_errors(self) -> None:
        if self.log_path is None or not self.log_path.exists():
            return
        lines = self.log_path.read_text(errors="replace").splitlines()
        errors = [ln for ln in lines if " ERROR " in ln or ln.startswith("ERROR")]
        if errors:
            last = " ".join(errors[-1].split()[3:])[:120]
            self.notes.append(f"log has {len(errors)} ERROR lines, e.g. '{last}' ({self.log_path.name})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers in the target's own session (workers) only


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def start_mock(
    env: BenchEnv, port: int, delay_ms: float, latency_ms: tuple[float, float] | None = None
) -> subprocess.Popen[bytes]:
    cmd = [*env.load_prefix(), env.python, "-m", "bench.upstream", "--port", str(port)]
    cmd += ["--chunk-delay-ms", str(delay_ms)]
    if latency_ms is not None:
        cmd += ["--latency-ms", f"{latency_ms[0]:g}-{latency_ms[1]:g}", "--seed", "1"]
    proc = _spawn(cmd, dict(os.environ), env.run_dir / f"mock-{port}.log")
    wait_ready(f"http://127.0.0.1:{port}/health", 20)
    return proc


def start_target(name: str, env: BenchEnv, instance: str = "") -> Running:
    """Start `name`; a Tollway target started again in the same run (the metering rounds) gets an
    `instance` tag, so that it has a data directory of its own next to the first one's."""
    if name == "direct":
        return Running(name, env.mock_url, env.paced_url, "none", slow_base=env.slow_url)
    if name == "floor":
        return _start_floor(env)
    if name == "litellm":
        return _start_litellm(env)
    if name in TARGETS:
        return _start_tollway(name, env, instance)
    raise ValueError(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")


def _launch(running: Running, cmd: list[str], env: dict[str, str], ready_path: str, log: Path) -> Running:
    started = time.monotonic()
    running.log_path = log
    running.proc = _spawn(cmd, env, log)
    try:
        running.startup_s = wait_ready(running.base + ready_path, 180, started)
    except TimeoutError:
        running.stop()
        raise RuntimeError(f"{running.name} never became ready; see {log}") from None
    return running


def _start_floor(env: BenchEnv) -> Running:
    port = free_port()
    cmd = [*env.gateway_prefix("floor"), env.python, "-m", "bench.floor", "--port", str(port)]
    cmd += ["--upstream", env.mock_url, "--paced", env.paced_url, "--slow", env.slow_url]
    base = f"http://127.0.0.1:{port}"
    return _launch(
        Running("floor", base, base, "none"), cmd, dict(os.environ), "/ready", env.run_dir / "floor.log"
    )


# --- Tollway ---------------------------------------------------------------------------------------


def tollway_config(env: BenchEnv) -> str:
    chat_price = "{input_per_mtok: 0.15, output_per_mtok: 0.6}"
    return f"""
providers:
  upstream: {{type: openai, base_url: "{env.mock_url}/v1", api_key: sk-mock-upstream}}
  paced: {{type: openai, base_url: "{env.paced_url}/v1", api_key: sk-mock-upstream}}
  slow: {{type: openai, base_url: "{env.slow_url}/v1", api_key: sk-mock-upstream}}
models:
  - id: upstream:gpt-4o-mini
    aliases: [gpt-4o-mini]
    capabilities: [chat]
    pricing: {chat_price}
  - id: upstream:text-embedding-3-small
    aliases: [text-embedding-3-small]
    capabilities: [embeddings]
    pricing: {{input_per_mtok: 0.02}}
  - id: paced:gpt-4o-mini
    aliases: [gpt-4o-mini-paced]
    capabilities: [chat]
    pricing: {chat_price}
  - id: slow:gpt-4o-mini
    aliases: [gpt-4o-mini-slow]
    capabilities: [chat]
    pricing: {chat_price}
"""


def _tollway_env(name: str, env: BenchEnv, data_dir: Path, running: Running) -> dict[str, str]:
    config = data_dir / "tollway.yaml"
    config.write_text(tollway_config(env))
    values = dict(
        os.environ,
        TOLLWAY_DATA_DIR=str(data_dir),
        TOLLWAY_CONFIG=str(config),
        TOLLWAY_ADMIN_KEY=ADMIN_KEY,
        TOLLWAY_LOCAL_MODELS="false",
        TOLLWAY_LOG_LEVEL="warning",
        TOLLWAY_METERING="false" if name == "tollway-nometer" else "true",
    )
    for var in INHERITED_VARS_DROPPED:
        values.pop(var, None)
    if name in ("tollway-scaleout", "tollway-w2"):
        database_url, drop = backing.create_postgres_db(env.pg_admin_url, name)
        running.cleanups.append(drop)
        redis_url, flush = backing.claim_redis_db(env.redis_url)
        running.cleanups.append(flush)
        values.update(TOLLWAY_DATABASE_URL=database_url, TOLLWAY_REDIS_URL=redis_url)
        running.backing_pids = backing.service_pids(env.pg_admin_url, env.redis_url)
        if env.pin:  # the services share CPU 0 with the load generator, as the mocks do
            running.cleanups.append(backing.pin_services(running.backing_pids, "0", f"0-{env.cores - 1}"))
        running.notes.append(f"database {database_url.rsplit('/', 1)[1]}, redis {redis_url}")
    return values


def _cli(env: BenchEnv, values: dict[str, str], *args: str) -> str:
    done = subprocess.run([env.tollway_bin, *args], env=values, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"tollway {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def _start_tollway(name: str, env: BenchEnv, instance: str = "") -> Running:
    # Own data directory (SQLite file) and own port per process; scale-out ones also get their own
    # PostgreSQL database and Redis database number, so processes running side by side never share state.
    data_dir = env.run_dir / (f"{name}-{instance}" if instance else name)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    running = Running(name, base, base, "")
    try:
        values = _tollway_env(name, env, data_dir, running)
        _cli(env, values, "projects", "create", "bench")
        created = _cli(
            env,
            values,
            "keys",
            "create",
            "--project",
            "bench",
            "--rpm",
            "10000000",
            "--tpm",
            "1000000000",
            "--json",
        )
        running.key = json.loads(created.strip().splitlines()[-1])["key"]
        project_id = json.loads(_cli(env, values, "projects", "list", "--json"))[0]["id"]
        running.project_id = project_id
        cmd = [*env.gateway_prefix(name), env.tollway_bin, "serve", "--port", str(port)]
        if name == "tollway-w2":
            cmd += ["--workers", "2"]
        _launch(running, cmd, values, "/ready", data_dir / "gateway.log")
        _fund_project(running, project_id)
    except Exception:
        running.stop()
        raise
    return running


def _admin(base: str, method: str, path: str, body: dict[str, object]) -> tuple[int, str]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {ADMIN_KEY}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _fund_project(running: Running, project_id: str) -> None:
    """Credit and enforcement through the admin API, so that the credit check really runs."""
    status, text = _admin(
        running.base, "POST", f"/admin/projects/{project_id}/credits", {"amount": "1000000"}
    )
    if status >= 300:
        running.notes.append(f"credits not granted ({status}: {text[:120]}); credit enforcement left off")
        return
    status, text = _admin(running.base, "PATCH", f"/admin/projects/{project_id}", {"credit_enforced": True})
    if status >= 300:
        running.notes.append(f"credit enforcement not turned on ({status}: {text[:120]})")
    else:
        running.notes.append("project funded with $1,000,000 credit, enforcement on; key rpm 10M, tpm 1G")


def spend_note(running: Running) -> str | None:
    """What the ledger charged the bench project: evidence that metering ran (or did not)."""
    if running.project_id is None:
        return None
    request = urllib.request.Request(f"{running.base}/admin/projects/{running.project_id}")
    request.add_header("Authorization", f"Bearer {ADMIN_KEY}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            project = json.loads(response.read())
    except (OSError, ValueError) as exc:
        return f"could not read the project's spend: {exc}"
    return f"after the run: spent {project.get('spent')}, balance {project.get('balance')}"


# --- LiteLLM ---------------------------------------------------------------------------------------


def litellm_config(env: BenchEnv) -> str:
    entries = [
        ("gpt-4o-mini", "openai/gpt-4o-mini", env.mock_url),
        ("gpt-4o-mini-paced", "openai/gpt-4o-mini", env.paced_url),
        ("gpt-4o-mini-slow", "openai/gpt-4o-mini", env.slow_url),
        ("text-embedding-3-small", "openai/text-embedding-3-small", env.mock_url),
    ]
    lines = ["model_list:"]
    for alias, model, url in entries:
        lines += [
            f"  - model_name: {alias}",
            "    litellm_params:",
            f"      model: {model}",
            f"      api_base: {url}/v1",
            "      api_key: sk-mock-upstream",
        ]
    lines += ["general_settings:", f"  master_key: {LITELLM_KEY}", ""]
    return "\n".join(lines)


def _start_litellm(env: BenchEnv) -> Running:
    if env.litellm_venv is None:
        raise RuntimeError("no LiteLLM virtualenv: pass --litellm-venv PATH")
    work = env.run_dir / "litellm"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    config.write_text(litellm_config(env))
    port = free_port()
    values = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    values.update(LITELLM_OFFLINE)
    cmd = [*env.gateway_prefix("litellm"), str(env.litellm_venv / "bin" / "litellm"), "--config", str(config)]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    running = Running("litellm", base, base, LITELLM_KEY)
    return _launch(running, cmd, values, "/health/liveliness", work / "litellm.log")


def version_of(env: BenchEnv, target: str) -> str | None:
    if target == "litellm" and env.litellm_venv is not None:
        pip = env.litellm_venv / "bin" / "pip"
        shown = subprocess.run([str(pip), "show", "litellm"], capture_output=True, text=True).stdout
        return next(
            (ln.split(":", 1)[1].strip() for ln in shown.splitlines() if ln.startswith("Version")), None
        )
    return None
