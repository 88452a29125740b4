"""Tokens of score calls, counted per server for /v1/_control/stats: the prompt
positions the calls carried and those the model was run over (from a /score
``logprob_start`` or an SGLang ``logprob_start_len`` on). Benchmarks compare
the two (memscore's causal windows, bench/floor_speed.py)."""

from __future__ import annotations

from typing import Any


def count_scored(server: Any, prompt: int, computed: int) -> None:
    counts = scored_tokens(server)
    counts["prompt"] += prompt
    counts["computed"] += computed


def scored_tokens(server: Any) -> dict[str, int]:
    # Kept on the server object itself: one count per running server.
    return vars(server).setdefault("scored_tokens", {"prompt": 0, "computed": 0})
