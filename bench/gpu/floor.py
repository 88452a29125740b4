"""The exact floor of leave-one-out on a GPU: a full matrix naive, with prefix
reuse, and against the floor computed from FLOPs at the card's measured
matmul rate (issue 10). Figures are printed, nothing is asserted.

Timing needs no trained weights: each model is built from its published
configuration (Qwen2.5-0.5B and Qwen2.5-7B) with random weights in bf16, so
nothing is downloaded or carried. A context of T tokens holds N memories of
M tokens spread evenly through it; a leave-one-out variant is the context
without one memory.

- naive: N+1 forward passes over the whole context (what memscore asked of a
  server before the causal windows);
- prefix reuse: the baseline, then for each memory only the tokens after it,
  given the baseline's keys and values before it (what a server with a prefix
  cache computes: SGLang's radix cache, the reference server's KV cache);
- floor: the FLOPs of exactly that work divided by the card's bf16 matmul rate.

Log-probabilities are taken at every scored position (the LM head in chunks),
as a server answering prompt log-probabilities does.

    python3 bench/gpu/floor.py                  # on a CUDA machine
    python3 bench/gpu/floor.py --tiny --device cpu   # a quick check of the script
"""

import argparse
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

QWEN = {
    # From the models' config.json (Qwen/Qwen2.5-0.5B, Qwen/Qwen2.5-7B).
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                         tie_word_embeddings=True),
    "qwen2.5-7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                       tie_word_embeddings=False),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=1000, tie_word_embeddings=True),
}
LM_HEAD_CHUNK = 4096


def build(name, device, attention):
    config = Qwen2Config(**QWEN[name], max_position_embeddings=65536, rope_theta=1e6,
                         attn_implementation=attention, torch_dtype=torch.bfloat16)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16).eval()
    return model, config


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def forward(model, ids, past=None):
    """Hidden states over `ids` (after `past`), then log-probabilities of each
    next token through the LM head in chunks; returns their sum."""
    out = model.model(input_ids=ids, past_key_values=past, use_cache=False)
    hidden = out.last_hidden_state[0]
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0] - 1, LM_HEAD_CHUNK):
        chunk = hidden[start : start + LM_HEAD_CHUNK]
        targets = ids[0, start + 1 : start + 1 + chunk.shape[0]]
        chunk = chunk[: targets.shape[0]]
        logprobs = torch.log_softmax(model.lm_head(chunk).float(), dim=-1)
        total += logprobs.gather(1, targets[:, None]).sum()
    return total


def prefix_cache(model, ids):
    return model.model(input_ids=ids, use_cache=True).past_key_values


def layout(n_tokens, n_memories, memory_tokens):
    """Start positions of the memories, spread evenly (the first after a system prompt)."""
    gap = n_tokens // n_memories
    return [gap // 2 + i * gap for i in range(n_memories)], memory_tokens


def flops(config, prefix, suffix):
    """Forward FLOPs of `suffix` tokens given `prefix` cached ones: the
    matmuls of every layer and the LM head, and causal attention."""
    d, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    kv = d * config.num_key_value_heads // config.num_attention_heads
    per_token = layers * (2 * d * (2 * d + 2 * kv) + 2 * 3 * d * f) + 2 * d * config.vocab_size
    attention = layers * 4 * d * suffix * (prefix + suffix / 2)
    return per_token * suffix + attention


def matmul_rate(device):
    """bf16 FLOP/s of a large matrix product on this device."""
    n = 8192 if device == "cuda" else 512
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    started, reps = time.perf_counter(), 10
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - started)


def timed(device, fn):
    sync(device)
    started = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - started, result


@torch.no_grad()
def measure(name, n_tokens, n_memories, memory_tokens, device, rate, attention):
    model, config = build(name, device, attention)
    generator = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (1, n_tokens), generator=generator).to(device)
    starts, length = layout(n_tokens, n_memories, memory_tokens)
    without = [torch.cat([ids[:, :p], ids[:, p + length :]], dim=1) for p in starts]

    forward(model, ids[:, :512])  # warm-up: kernels chosen, memory pools grown
    naive, _ = timed(device, lambda: [forward(model, ids)] + [forward(model, w) for w in without])
    reuse = 0.0
    baseline_time, _ = timed(device, lambda: forward(model, ids))
    reuse += baseline_time
    for p, variant in zip(starts, without):
        past = prefix_cache(model, variant[:, :p])  # what the cache holds: not timed
        seconds, _ = timed(device, lambda v=variant, p=p, past=past: forward(model, v[:, p:], past))
        reuse += seconds
    floor_flops = flops(config, 0, n_tokens) + sum(flops(config, p, n_tokens - length - p) for p in starts)
    naive_flops = flops(config, 0, n_tokens) + n_memories * flops(config, 0, n_tokens - length)
    floor = floor_flops / rate
    print(f"{attention:14s} {name:13s} T={n_tokens:6d} N={n_memories:3d}  naive {naive:7.2f} s  "
          f"prefix reuse {reuse:7.2f} s ({naive / reuse:4.2f}x faster)  "
          f"floor {floor:6.2f} s (reuse is {reuse / floor:4.2f}x the floor)  "
          f"FLOPs naive/floor {naive_flops / floor_flops:4.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="a tiny model and context: checks the script")
    # sdpa runs a prompt with PyTorch's causal flash kernel, but a suffix after
    # cached keys with an explicit mask; flex_attention handles both as blocks.
    parser.add_argument("--attention", default="sdpa", help="sdpa or flex_attention")
    args = parser.parse_args()
    rate = matmul_rate(args.device)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"device: {name}, bf16 matmul {rate / 1e12:.0f} TFLOP/s measured", flush=True)
    runs = [("tiny", 1024, 8, 32)] if args.tiny else [
        ("qwen2.5-0.5b", 8192, 16, 128), ("qwen2.5-0.5b", 32768, 16, 128),
        ("qwen2.5-7b", 8192, 8, 128), ("qwen2.5-7b", 32768, 8, 128),
    ]
    for run in runs:
        measure(*run, device=args.device, rate=rate, attention=args.attention)
        if args.device == "cuda":
            torch.cuda.empty_cache()  # the model of the last size is gone with measure()


if __name__ == "__main__":
    main()
