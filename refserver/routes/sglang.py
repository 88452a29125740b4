"""SGLang's native ``POST /generate`` and ``GET /get_model_info``.

Shapes as read in SGLang's source: GenerateReqInput in
python/sglang/srt/managers/io_struct.py (commit 001067fffe33), the handlers in
python/sglang/srt/entrypoints/http_server.py (commit 0025436eab05), meta_info as
TokenizerManager._handle_batch_output builds it, and input_token_logprobs as the
scheduler pads it (``[None] + logprobs[:-1]`` over
``origin_input_ids[logprob_start_len:]``). So ``meta_info.input_token_logprobs``
has ``len(input_ids) - logprob_start_len`` entries ``[logprob, token_id, text]``,
the first logprob always ``null``, text ``null`` unless ``return_text_in_logprobs``.
A ``ValueError`` in SGLang is a 400 ``{"error": {"message"}}``; that is the error
style of these paths.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from aiohttp import web

from .. import validation as v
from ..endpoint import Call, endpoint
from ..generation import Completion, generate
from ..logprobs import position_details, prompt_token_logprobs
from ..model import LanguageModel
from ..server import RefServer
from ..usage import count_scored
from .sglang_request import GenerateRequest, generate_request


async def generate_group(request: web.Request, server: RefServer) -> str:
    """With return_logprob it is a scoring call; otherwise generation."""
    try:
        body = await server.read_json(request)
    except v.BadRequest:
        return "completions"
    wanted = body.get("return_logprob")
    return "score" if wanted is True or (isinstance(wanted, list) and True in wanted) else "completions"


@endpoint(generate_group)
async def generate_native(request: web.Request, server: RefServer, call: Call) -> web.Response:
    body = await server.read_json(request)
    started = time.monotonic()
    req: GenerateRequest = await server.cpu(generate_request, body, server.tokenizer, server.config)
    model = server.model
    counted: list[tuple[int, int]] = []
    outs = await server.cpu(_outputs, model, req, call.neg_inf, counted)
    for prompt, computed in counted:
        count_scored(server, prompt, computed)
    n_tokens = sum(len(ids) + len(out["output_ids"]) for ids, out in zip(req.prompts, outs))
    await call.token_latency(n_tokens)
    for out in outs:
        out["meta_info"]["e2e_latency"] = round(time.monotonic() - started, 6)
    return web.json_response(outs if req.batched else outs[0])


def _outputs(
    model: LanguageModel, req: GenerateRequest, neg_inf: bool, counted: list[tuple[int, int]]
) -> list[dict[str, Any]]:
    """The answers; ``counted`` gets (prompt, computed) positions of each logprob prompt."""
    outs = []
    for i, ids in enumerate(req.prompts):
        params = req.sampling[i]
        result = generate(model, ids, params) if params.max_tokens > 0 else Completion()
        meta: dict[str, Any] = {
            "id": f"{req.rid}_{i}" if req.batched else req.rid,
            "finish_reason": _finish_reason(model, result, params.stop),
            "prompt_tokens": len(ids),
            "weight_version": "default",
        }
        if req.return_logprob[i]:
            meta.update(_logprob_info(model, ids, result.token_ids, req, i, neg_inf))
            counted.append((len(ids), len(ids) - req.logprob_start_len[i]))
        meta.update({"completion_tokens": len(result.token_ids), "cached_tokens": 0})
        outs.append({"text": result.text, "output_ids": result.token_ids, "meta_info": meta})
    return outs


def _finish_reason(model: LanguageModel, result: Any, stops: tuple[str, ...]) -> dict[str, Any]:
    if result.finish_reason == "length":
        return {"type": "length", "length": len(result.token_ids)}
    if result.token_ids and result.token_ids[-1] == model.im_end_id:
        return {"type": "stop", "matched": model.im_end_id}
    raw = model.tokenizer.decode(result.token_ids)
    return {"type": "stop", "matched": next((s for s in stops if s in raw), None)}


def _logprob_info(
    model: LanguageModel, ids: list[int], output_ids: list[int], req: GenerateRequest, i: int, neg_inf: bool
) -> dict[str, Any]:
    start = req.logprob_start_len[i]
    k = req.top_logprobs_num[i]
    with_text = req.return_text_in_logprobs
    tokenizer = model.tokenizer
    whole = list(ids) + list(output_ids)
    values = prompt_token_logprobs(model, whole, start)
    if neg_inf:
        values[len(ids) - 1 - start] = -np.inf

    def entry(logprob: float | None, token: int) -> list[Any]:
        shown = None if logprob is None or not np.isfinite(logprob) else float(logprob)  # orjson writes -inf as null
        return [shown, token, tokenizer.token_str(token) if with_text else None]

    n_in = len(ids) - start
    info: dict[str, Any] = {
        "input_token_logprobs": [entry(None if j == 0 else values[j], whole[start + j]) for j in range(n_in)],
        "output_token_logprobs": [entry(values[n_in + j], t) for j, t in enumerate(output_ids)],
    }
    if k > 0:
        positions = range(start, len(whole))
        tops = [[entry(lp, t) for t, lp, _ in d.top] for d in position_details(model, whole, positions, k)]
        info["input_top_logprobs"] = [None] + tops[1:n_in]
        info["output_top_logprobs"] = tops[n_in:]
    return info


@endpoint("models", gated=False)
async def get_model_info(request: web.Request, server: RefServer, call: Call) -> web.Response:
    name = server.config.model
    return web.json_response(
        {
            "model_path": name,
            "tokenizer_path": name,
            "is_generation": True,
            "preferred_sampling_params": None,
            "weight_version": "default",
        }
    )
