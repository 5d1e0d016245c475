"""Loopback simulators of upstream AI APIs, for tests and the benchmark.

``openai``: a strict OpenAI wire-protocol server (``/v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``, ``/v1/models``) with deterministic answers, failure and latency injection through
``x-sim-*`` headers, and ``/_sim/*`` introspection. Run it with :func:`serve_openai_sim`,
:class:`SimulatorThread`, or ``python -m tollway.simulators openai``.
"""

from __future__ import annotations

from tollway.simulators.openai_control import DEFAULT_MODELS, SimOptions
from tollway.simulators.openai_sim import OPENAI_SIM_KEY, OpenAISim, create_openai_sim_app
from tollway.simulators.runner import RunningOpenAISim, SimulatorThread, serve_app, serve_openai_sim

__all__ = [
    "DEFAULT_MODELS",
    "OPENAI_SIM_KEY",
    "OpenAISim",
    "RunningOpenAISim",
    "SimOptions",
    "SimulatorThread",
    "create_openai_sim_app",
    "serve_app",
    "serve_openai_sim",
]
