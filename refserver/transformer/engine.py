"""The transformer engine: the base weights converted once into the state
directory, the model's own tokenizer, a prefix cache shared by every model it
serves, and LoRA adapters, one per succeeded training job (``lora.py``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import lora, weights
from .model import TransformerModel
from .prefix_cache import PrefixCache, Totals
from .tokens import ModelTokenizer

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..training import Job

log = logging.getLogger(__name__)


class TransformerEngine:
    name = "transformer"

    def __init__(self, config: ServerConfig):
        # Same numbers for the same request: a fixed thread count (a sum's order
        # depends on it) and no non-deterministic kernels.
        torch.set_num_threads(config.threads)
        torch.use_deterministic_algorithms(True)
        self.state_dir = config.state_dir
        self.base_dir = weights.converted_dir(config.weights_dir or config.state_dir)
        self.tokenizer = ModelTokenizer(weights.load_tokenizer(self.base_dir))
        self.fingerprint = self.tokenizer.fingerprint
        self.max_model_len = 8192  # SmolLM2's trained context
        self.train_context_tokens = config.train_max_tokens
        self.settings = lora.LoraSettings(steps=config.train_steps, learning_rate=config.train_learning_rate)
        self.cache_bytes = int(config.prefix_cache_mb * 2**20)
        self.totals = Totals()
        self.model: TransformerModel | None = None

    def _serve(self, adapter: Path | None, version: str) -> TransformerModel:
        model = weights.for_scoring(lora.merged_model(self.base_dir, adapter))
        # A new model's keys and values differ: it gets a cache of its own.
        self.model = TransformerModel(model, self.tokenizer, PrefixCache(self.cache_bytes, self.totals), version)
        return self.model

    def restore(self, succeeded: list[Job]) -> TransformerModel:
        if not succeeded:
            return self._serve(None, "base")
        latest = succeeded[-1]
        path = lora.adapter_dir(self.state_dir, latest.job_id)
        if not path.exists():
            raise FileNotFoundError(f"{path}: the adapter of succeeded job {latest.job_id} is missing")
        return self._serve(path, latest.job_id)

    def train(self, job: Job, succeeded: list[Job]) -> TransformerModel:
        previous = lora.adapter_dir(self.state_dir, succeeded[-1].job_id) if succeeded else None
        samples = [(s.context_tail, s.continuation) for s in job.samples]
        out = lora.adapter_dir(self.state_dir, job.job_id)
        def on_step(done: int, steps: int) -> None:
            job.progress = {"step": done, "steps": steps}  # a new dict: the server's loop reads it whole

        job.training = lora.train_adapter(self.base_dir, samples, previous, out, self.settings, on_step)
        log.info("training job %s: %s", job.job_id, job.training)
        return self._serve(out, job.job_id)

    def metrics(self) -> dict[str, Any]:
        model = self.model
        cache = model.cache if model is not None else None
        return {
            **self.totals.as_dict(),
            "cache_entries": len(cache) if cache is not None else 0,
            "cache_bytes": cache.nbytes if cache is not None else 0,
            "cache_max_bytes": self.cache_bytes,
            "model_version": model.version if model is not None else None,
        }
