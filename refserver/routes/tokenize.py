"""``POST /tokenize`` and ``/detokenize``, at the root and (memscore) under ``/v1``.

memscore and vLLM: ``{"model", "prompt", "add_special_tokens", "return_token_strs"}``
→ ``{"count", "max_model_len", "tokens", "token_strs"}`` and ``{"model", "tokens"}``
→ ``{"prompt"}`` (vLLM's TokenizeCompletionRequest / TokenizeResponse /
DetokenizeRequest / DetokenizeResponse; vLLM serves them at the root only).
SGLang (serving_tokenize.py, read at commit 0351c1fafe4c): ``prompt`` may be a list
of strings (then ``tokens`` and ``count`` are lists); detokenize takes ``tokens``
(a list, or a list of lists) and ``skip_special_tokens`` (default true) and answers
``{"text"}``. With ``--api all`` the memscore/vLLM shapes are served."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import validation as v
from ..endpoint import Call, endpoint
from ..server import LARGE_BODY, RefServer


@endpoint("tokenize")
async def tokenize(request: web.Request, server: RefServer, call: Call) -> web.Response:
    body = await server.read_json(request)
    prompt = body.get("prompt")
    if body.get("add_special_tokens") is not None:
        # Nothing to add: this tokenizer has no BOS/EOS; accepted for compatibility.
        v.boolean(body["add_special_tokens"], "add_special_tokens")
    limit = server.config.max_prompt_tokens
    if server.config.api == "sglang" and isinstance(prompt, list):
        texts = [v.string(p, f"prompt[{i}]") for i, p in enumerate(prompt)]
        batch = [await _encode(server, text) for text in texts]
        await call.token_latency(sum(len(ids) for ids in batch))
        return web.json_response({"tokens": batch, "count": [len(ids) for ids in batch], "max_model_len": limit})
    ids = await _encode(server, v.string(prompt, "prompt"))
    await call.token_latency(len(ids))
    answer: dict[str, Any] = {"count": len(ids), "max_model_len": limit, "tokens": ids}
    if server.config.api == "vllm":
        wants_strs = v.boolean(body.get("return_token_strs", False) or False, "return_token_strs")
        answer["token_strs"] = [server.tokenizer.token_str(i) for i in ids] if wants_strs else None
    return web.json_response(answer)


async def _encode(server: RefServer, text: str) -> list[int]:
    encode = server.tokenizer.encode
    return encode(text) if len(text) < LARGE_BODY else await server.cpu(encode, text)


@endpoint("detokenize")
async def detokenize(request: web.Request, server: RefServer, call: Call) -> web.Response:
    body = await server.read_json(request)
    vocab = server.tokenizer.vocab_size
    tokens = body.get("tokens")
    if server.config.api != "sglang":
        ids = v.token_ids(tokens, "tokens", vocab, allow_empty=True)
        await call.token_latency(len(ids))
        return web.json_response({"prompt": server.tokenizer.decode(ids.tolist())})
    skip = v.boolean(body.get("skip_special_tokens", True), "skip_special_tokens")
    if isinstance(tokens, list) and tokens and isinstance(tokens[0], list):
        batch = [v.token_ids(t, f"tokens[{i}]", vocab, allow_empty=True).tolist() for i, t in enumerate(tokens)]
        await call.token_latency(sum(len(ids) for ids in batch))
        return web.json_response({"text": [_decode(server, ids, skip) for ids in batch]})
    ids = v.token_ids(tokens, "tokens", vocab, allow_empty=True).tolist()
    await call.token_latency(len(ids))
    return web.json_response({"text": _decode(server, ids, skip)})


def _decode(server: RefServer, ids: list[int], skip_special: bool) -> str:
    if skip_special:
        ids = [i for i in ids if i not in server.tokenizer.special_ids]
    return server.tokenizer.decode(ids)
