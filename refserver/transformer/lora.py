"""LoRA fine-tuning (peft, rank 8 on the attention's q and v projections) on
samples' continuations given their contexts: the loss is on the continuation's
tokens only. A job trains a fresh copy of the base model (never the one being
served), starting from the adapter of the previous succeeded job, for a bounded
number of optimiser steps, one sample per step in order; the adapter is saved under
``adapters/<job_id>/`` in the state directory. The served model is the base with
the latest adapter merged in, rebuilt the same way at start-up."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from .weights import load_base

ADAPTERS = "adapters"


@dataclass(frozen=True)
class LoraSettings:
    steps: int = 20
    learning_rate: float = 1e-3
    rank: int = 8
    alpha: int = 16
    seed: int = 0


def adapter_dir(state_dir: Path, job_id: str) -> Path:
    return state_dir / ADAPTERS / job_id


def train_adapter(
    base_dir: Path,
    samples: Sequence[tuple[Sequence[int], Sequence[int]]],
    previous: Path | None,
    out: Path,
    settings: LoraSettings,
    on_step: Callable[[int, int], None] | None = None,
) -> dict:
    """Train on (context, continuation) pairs and save the adapter at ``out``;
    returns what the job reports (steps, seconds, first and last loss).
    ``on_step(done, steps)`` is told after each optimiser step."""
    torch.manual_seed(settings.seed)
    base = load_base(base_dir)
    if previous is not None:
        model = PeftModel.from_pretrained(base, previous, is_trainable=True)
    else:
        config = LoraConfig(
            r=settings.rank,
            lora_alpha=settings.alpha,
            target_modules=["q_proj", "v_proj"],
            lora_dropout=0.0,
            bias="none",
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(base, config)
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate)
    losses, started = [], time.monotonic()
    for step in range(settings.steps):
        context, continuation = samples[step % len(samples)]
        ids = torch.tensor([list(context) + list(continuation)])
        labels = ids.clone()
        labels[0, : len(context)] = -100  # no loss on the context
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1, settings.steps)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    report = {
        "steps": settings.steps,
        "seconds": round(time.monotonic() - started, 3),
        "first_loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
    }
    (tmp / "memscore-training.json").write_text(json.dumps(report), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return report


def merged_model(base_dir: Path, adapter: Path | None):
    """The base model with ``adapter`` (if any) merged into its weights, for serving."""
    base = load_base(base_dir)
    if adapter is None:
        return base
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    merged.eval()
    return merged
