"""How fast the reference server is. Prints figures; asserts nothing.

    .venv/bin/python bench/refserver_speed.py [--tokens 100000] [--repeats 5] [--calls 1000]

- /score on one long prompt (a conversation built from the corpus, about half of
  it assistant responses), end to end over HTTP: tokens per second.
- The same prompt scored in process, without HTTP or JSON: the model's own speed.
- A trivial call (/score on a 7-token greeting, and GET /health) over a kept-alive
  connection: the median round trip, i.e. the server's per-call overhead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from refserver.corpus import load_documents, render_message  # noqa: E402
from refserver.model import ModelBuilder  # noqa: E402
from refserver.testing import run_refserver  # noqa: E402


def conversation_ids(client: httpx.Client, n_tokens: int) -> list[int]:
    """Memories and dialogue turns from the corpus, repeated until long enough."""
    documents = load_documents()
    nodes = []
    for i, doc in enumerate(documents):
        if doc.startswith("<|im_start|>"):
            nodes.append(doc)
        else:
            nodes.append(render_message("system", f"Memory notes/{i}: {doc}"))
    ids: list[int] = []
    while len(ids) < n_tokens:
        for node in nodes:
            ids += client.post("/tokenize", json={"prompt": node}).json()["tokens"]
            if len(ids) >= n_tokens:
                break
    return ids[:n_tokens]


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as state, run_refserver(state) as server:
        with httpx.Client(base_url=server.base_url, timeout=120) as client:
            prompt = conversation_ids(client, args.tokens)

            def score_long() -> None:
                response = client.post("/score", json={"model": "memscore-ref", "prompt": prompt})
                response.raise_for_status()

            score_long()  # warm up
            http_times = timed(score_long, args.repeats)
            n_responses = len(client.post("/score", json={"prompt": prompt}).json()["scores"])

            greeting_text = "<|im_start|>assistant\nHi<|im_end|>\n"
            greeting = client.post("/tokenize", json={"prompt": greeting_text}).json()["tokens"]

            def trivial() -> None:
                client.post("/score", json={"prompt": greeting}).raise_for_status()

            def health() -> None:
                client.get(f"{server.root_url}/health").raise_for_status()

            timed(trivial, 50)
            trivial_times = timed(trivial, args.calls)
            health_times = timed(health, args.calls)

    model = ModelBuilder().build()
    model.score(prompt)
    model_times = timed(lambda: model.score(prompt), args.repeats)

    best, median = min(http_times), statistics.median(http_times)
    print(f"/score, {len(prompt):,} tokens, {n_responses} assistant responses, {args.repeats} runs")
    rate, best_rate = len(prompt) / median, len(prompt) / best
    print(f"  over HTTP:   median {median * 1e3:7.1f} ms = {rate:>12,.0f} tokens/s   (best {best_rate:,.0f})")
    m_median = statistics.median(model_times)
    print(f"  in process:  median {m_median * 1e3:7.1f} ms = {len(prompt) / m_median:>12,.0f} tokens/s")
    for name, times in (("/score, 7 tokens", trivial_times), ("GET /health", health_times)):
        q = statistics.quantiles(times, n=100)
        median_ms, p90_ms = statistics.median(times) * 1e3, q[89] * 1e3
        print(f"trivial call {name:>16}: median {median_ms:.3f} ms, p90 {p90_ms:.3f} ms over {len(times)} calls")


if __name__ == "__main__":
    main()
