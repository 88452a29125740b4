"""The transformer behind the routes: the same interface as the n-gram
``LanguageModel`` (score, token_logprobs, response_spans, next_token_logprobs,
distributions, tokenizer, vocab_size, im_start_id, im_end_id).

Every call runs the decoder over the prompt, reusing the longest prefix the KV
cache holds (``prefix_cache.py``), and applies the LM head only at the positions
asked for. float64 throughout (``weights.for_scoring``: so that a prompt gives the
same numbers whether its prefix came from the cache or not); one forward pass at a
time (a lock), with the thread count fixed at start-up and deterministic algorithms,
so the same request gives the same numbers. Position 0 has no context: its log-probability is that of a uniform
guess, -log(vocabulary), a value no client reads (vLLM and SGLang report null there,
and no response starts at 0)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
from transformers import DynamicCache

from ..spans import assistant_header, response_spans, span_totals
from .prefix_cache import Entry, PrefixCache, Usage
from .tokens import ModelTokenizer

# Tokens per forward pass: bounds the attention's memory on long prompts.
CHUNK_TOKENS = 1024
# Positions per LM-head product (576 x 49,152 doubles each).
HEAD_ROWS = 256


class TransformerModel:
    def __init__(self, model, tokenizer: ModelTokenizer, cache: PrefixCache, version: str = "base"):
        self.model = model  # a LlamaForCausalLM in float64, weights (LoRA merged) not to be changed
        self.tokenizer = tokenizer
        self.cache = cache
        self.version = version
        self.vocab_size = tokenizer.vocab_size
        self.im_start_id = tokenizer.im_start_id
        self.im_end_id = tokenizer.im_end_id
        self.assistant_header = assistant_header(tokenizer)
        self._lock = threading.Lock()

    # ---- the interface the routes use -----------------------------------------

    def response_spans(self, ids: np.ndarray) -> list[tuple[int, int]]:
        return response_spans(ids, self.assistant_header, self.im_end_id)

    def score(self, ids: Sequence[int] | np.ndarray, start: int = 0) -> list[tuple[float, int]]:
        """(total log-probability, token count) of each assistant response; positions
        before ``start`` are not computed and count as 0."""
        return span_totals(self, np.asarray(ids, np.int64), start)

    def token_logprobs(self, ids: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """log P(ids[t] | ids[:t]) for each t in ``positions`` (default: all)."""
        ids = np.asarray(ids, np.int64)
        positions = np.arange(len(ids)) if positions is None else np.asarray(positions, np.int64)
        out = np.full(len(positions), -math.log(self.vocab_size))
        inside = positions > 0
        if not inside.any():
            return out
        hidden = self._hidden(ids[: int(positions.max())])
        rows = positions[inside] - 1
        targets = torch.as_tensor(ids[positions[inside]])
        values = []
        with torch.inference_mode():
            for a in range(0, len(rows), HEAD_ROWS):
                logp = self._head(hidden[torch.as_tensor(rows[a : a + HEAD_ROWS])])
                values.append(logp.gather(1, targets[a : a + HEAD_ROWS, None])[:, 0])
        out[inside] = torch.cat(values).numpy()
        return out

    def next_token_logprobs(self, history: np.ndarray) -> np.ndarray:
        """log P(w | history) for every w in the vocabulary."""
        history = np.asarray(history, np.int64)
        if not len(history):
            return np.full(self.vocab_size, -math.log(self.vocab_size))
        hidden = self._hidden(history)
        with torch.inference_mode():
            return self._head(hidden[-1:])[0].numpy()

    def distributions(self, ids: np.ndarray, positions: Iterable[int]) -> Iterator[np.ndarray]:
        """log P(w | ids[:t]) for every w, at each t of ``positions``."""
        positions = list(positions)
        ids = np.asarray(ids, np.int64)
        hidden = self._hidden(ids[: max(positions, default=0)]) if any(positions) else None
        for t in positions:
            if t == 0 or hidden is None:
                yield np.full(self.vocab_size, -math.log(self.vocab_size))
                continue
            with torch.inference_mode():
                yield self._head(hidden[t - 1 : t])[0].numpy()

    def take_usage(self) -> Usage:
        """Tokens this thread computed and took from the cache since the last call."""
        return self.cache.take_usage()

    # ---- the decoder and the head -----------------------------------------------

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.model.lm_head(hidden), dim=-1)

    def _hidden(self, ids: np.ndarray) -> torch.Tensor:
        """Final hidden states [len(ids), hidden] of ``ids``, from the cache as far as it
        holds them; the result is cached in turn."""
        n = len(ids)
        with self._lock, torch.inference_mode():
            entry, reused = self.cache.longest(ids)
            if entry is not None and reused == n:
                self.cache.count(0, n)
                return entry.hidden[:n]
            if reused:
                cache = DynamicCache(ddp_cache_data=[(k[:, :, :reused], v[:, :, :reused]) for k, v in entry.kv])
                parts = [entry.hidden[:reused]]
            else:
                cache, parts = DynamicCache(), []
            for a in range(reused, n, CHUNK_TOKENS):
                chunk = torch.as_tensor(ids[a : a + CHUNK_TOKENS])[None]
                out = self.model.model(input_ids=chunk, cache=cache, use_cache=True)
                parts.append(out.last_hidden_state[0])
            hidden = torch.cat(parts) if len(parts) > 1 else parts[0]
            kv = [(layer.keys, layer.values) for layer in cache.layers]
            self.cache.store(Entry(ids.copy(), kv, hidden))
            self.cache.count(n - reused, reused)
            return hidden
