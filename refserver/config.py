"""Command-line flags, each also readable from ``REFSERVER_<FLAG_UPPER_SNAKE>``.

A flag given on the command line wins over its environment variable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .faults import FaultSettings

ENV_PREFIX = "REFSERVER_"
# Which API surfaces the server exposes (see app.py): memscore's own, vLLM's, SGLang's, or all three.
APIS = ("memscore", "vllm", "sglang", "all")
SCHEDULING_POLICIES = ("fcfs", "priority")
ENGINES = ("ngram", "transformer")


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    state_dir: Path
    model: str
    api_key: str | None
    max_prompt_tokens: int
    seed: int
    enable_control: bool
    access_log: bool
    faults: FaultSettings
    api: str = "all"
    scheduling_policy: str = "fcfs"
    engine: str = "ngram"
    threads: int = 2
    prefix_cache_mb: float = 2048.0
    train_steps: int = 20
    train_learning_rate: float = 1e-3
    train_max_tokens: int = 1024
    weights_dir: Path | None = None


def list_of_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def list_of_names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


# (flag, type, default, help)
_FLAGS: list[tuple[str, Callable[[str], Any], Any, str]] = [
    ("--host", str, "127.0.0.1", "address to listen on"),
    ("--port", int, 8765, "port to listen on, 0 to 65535 (0 picks a free one)"),
    ("--state-dir", str, None, "directory for training jobs and the trained model (required)"),
    ("--model", str, "memscore-ref", "model name served and accepted in requests"),
    ("--api-key", str, None, "require 'Authorization: Bearer KEY' on /v1 and /tokenize"),
    ("--max-prompt-tokens", int, 262144, "longest prompt accepted (also the model's max length)"),
    ("--latency-ms", float, 0.0, "least time a model call takes once it has a capacity slot, its compute included"),
    ("--latency-per-token-us", float, 0.0, "latency added per token processed"),
    ("--capacity", int, 0, "requests served at once, the rest queue (0 = unlimited)"),
    ("--fail-rate", float, 0.0, "fraction of calls that fail (decided per call from --seed)"),
    ("--fail-nth", list_of_ints, [], "call numbers that fail, e.g. '3,7' (1-based, per endpoint)"),
    ("--fail-mode", str, "http500", "how a call fails: http500, error200, hang or drop"),
    ("--fail-endpoints", list_of_names, ["score"], "endpoints faults apply to, e.g. 'score,completions'"),
    ("--hang-seconds", float, 600.0, "how long a 'hang' failure holds the request"),
    ("--seed", int, 0, "seed for failure decisions and the default sampling seed"),
    ("--api", str, "all", "API surface to serve: memscore, vllm, sglang or all"),
    (
        "--scheduling-policy",
        str,
        "fcfs",
        "as vLLM's: fcfs (a non-zero priority is a 400 on the vllm surface) or priority",
    ),
    ("--engine", str, "ngram", "the model: ngram (numpy only) or transformer (SmolLM2-135M; make install-model)"),
    ("--threads", int, 2, "transformer: torch threads (fixed, so the same request gives the same numbers)"),
    ("--prefix-cache-mb", float, 2048.0, "transformer: KV prefix cache memory, about 97 KB a token (0 turns it off)"),
    ("--train-steps", int, 20, "transformer: LoRA optimiser steps per training job (one sample each)"),
    ("--train-learning-rate", float, 1e-3, "transformer: LoRA learning rate"),
    ("--train-max-tokens", int, 1024, "transformer: a training sample's context is cut from the left to fit this"),
    ("--weights-dir", str, None, "transformer: where the converted weights are kept (default: the state directory)"),
]
_SWITCHES = [
    ("--enable-control", "serve /v1/_control/faults and /v1/_control/stats (for tests)"),
    ("--access-log", "log every request to stderr"),
]


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _check_choices(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for flag, value, allowed in (
        ("--api", args.api, APIS),
        ("--scheduling-policy", args.scheduling_policy, SCHEDULING_POLICIES),
        ("--engine", args.engine, ENGINES),
    ):
        if value not in allowed:
            parser.error(f"{flag}: expected one of {', '.join(allowed)}, got {value!r}")


def _check_engine_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for flag, value, low in (
        ("--threads", args.threads, 1),
        ("--prefix-cache-mb", args.prefix_cache_mb, 0),
        ("--train-steps", args.train_steps, 1),
        ("--train-max-tokens", args.train_max_tokens, 2),
    ):
        if not value >= low:
            parser.error(f"{flag} must be at least {low}, got {value}")
    if not 0 < args.train_learning_rate <= 1:
        parser.error(f"--train-learning-rate must be above 0 and at most 1, got {args.train_learning_rate}")


def parse_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> ServerConfig:
    """The server's settings from its flags (and REFSERVER_* variables). Long
    only because it lists every flag, one after another, as --help prints them."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m refserver",
        description="memscore's reference inference server. Every flag can also be set "
        "with the environment variable REFSERVER_<FLAG_UPPER_SNAKE>.",
    )
    for flag, kind, default, text in _FLAGS:
        name = env_name(flag)
        if name in environ:
            try:
                default = kind(environ[name])
            except ValueError as e:
                parser.error(f"{name}: {e}")
        parser.add_argument(flag, type=kind, default=default, help=f"{text} [env {name}]")
    for flag, text in _SWITCHES:
        name = env_name(flag)
        try:
            default = _boolean(environ.get(name, ""))
        except ValueError as e:
            parser.error(f"{name}: {e}")
        parser.add_argument(flag, action="store_true", default=default, help=f"{text} [env {name}]")
    args = parser.parse_args(argv)

    if not args.state_dir:
        parser.error(f"--state-dir (or {env_name('--state-dir')}) is required")
    if not 0 <= args.port <= 65535:  # bind() would refuse it with a traceback
        parser.error(f"--port (or {env_name('--port')}) must be 0 to 65535, got {args.port}")
    if args.max_prompt_tokens < 1:
        parser.error("--max-prompt-tokens must be at least 1")
    _check_choices(parser, args)
    _check_engine_numbers(parser, args)
    try:
        faults = FaultSettings.from_mapping(
            {
                "latency_ms": args.latency_ms,
                "latency_per_token_us": args.latency_per_token_us,
                "capacity": args.capacity,
                "fail_rate": args.fail_rate,
                "fail_nth": args.fail_nth,
                "fail_mode": args.fail_mode,
                "fail_endpoints": args.fail_endpoints,
                "hang_seconds": args.hang_seconds,
            }
        )
    except ValueError as e:
        field, _, problem = str(e).partition(":")
        parser.error(f"--{field.replace('_', '-')}:{problem}")
    return ServerConfig(
        host=args.host,
        port=args.port,
        state_dir=Path(args.state_dir),
        model=args.model,
        api_key=args.api_key or None,
        max_prompt_tokens=args.max_prompt_tokens,
        seed=args.seed,
        enable_control=args.enable_control,
        access_log=args.access_log,
        faults=faults,
        api=args.api,
        scheduling_policy=args.scheduling_policy,
        engine=args.engine,
        threads=args.threads,
        prefix_cache_mb=args.prefix_cache_mb,
        train_steps=args.train_steps,
        train_learning_rate=args.train_learning_rate,
        train_max_tokens=args.train_max_tokens,
        weights_dir=Path(args.weights_dir) if args.weights_dir else None,
    )
