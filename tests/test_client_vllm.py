"""Contract: memscore's vLLM client against bodies shaped as vLLM's source defines them
(vllm/entrypoints/openai/completion/protocol.py, protocol.py's ErrorResponse and
Tokenize*, clamp_prompt_logprobs; see scoring/client/vllm.py for the versions read)."""

import pytest

from scoring.client import PermanentError, TransientError, VllmClient
from tests.client_contract import answering, replaying, sse

IDS = [151644, 77091, 198, 9707, 151645, 198, 151644, 77091, 198, 17, 151645]
SPANS = [(3, 5), (9, 11)]
LOGPROB = {3: -1.25, 4: -0.5, 9: -2.0, 10: -0.125}


def prompt_logprobs(ids, values=LOGPROB):
    """CompletionResponseChoice.prompt_logprobs as JSON: null first, then one dict
    per position keyed by the token id AS A STRING, {"logprob", "rank", "decoded_token"}."""
    out = [None]
    for p in range(1, len(ids)):
        out.append({str(ids[p]): {"logprob": values.get(p, -3.0), "rank": 1, "decoded_token": "t"}})
    return out


def completion(*choices):
    return {
        "id": "cmpl-1", "object": "text_completion", "created": 1764000000, "model": "qwen",
        "choices": list(choices),
        "usage": {"prompt_tokens": len(IDS), "total_tokens": len(IDS) + 1, "completion_tokens": 1,
                  "prompt_tokens_details": None},
    }


def choice(index, ids, values=LOGPROB):
    return {"index": index, "text": "x", "logprobs": None, "finish_reason": "length", "stop_reason": None,
            "prompt_logprobs": prompt_logprobs(ids, values)}


@pytest.mark.parametrize("base_url", ["http://gpu-1:8000", "http://gpu-1:8000/v1", "http://gpu-1:8000/v1/"])
def test_it_sums_prompt_logprobs_over_memscores_spans(base_url):
    client, sent = replaying("vllm", answering(200, completion(choice(0, IDS))), base_url=base_url)
    assert isinstance(client, VllmClient)
    assert client.score(IDS, SPANS, first_needed=3) == [-1.75, -2.125]
    assert sent[0].url == "http://gpu-1:8000/v1/completions"
    # No priority field: a stock vLLM refuses any non-zero one.
    assert sent[0].body == {"model": "qwen", "prompt": IDS, "max_tokens": 1, "temperature": 0, "prompt_logprobs": 0}


def test_several_prompts_go_as_a_list_of_lists_and_choices_are_read_by_index():
    other = IDS[:6]
    body = completion(choice(1, other, {3: -4.0, 4: -1.0}), choice(0, IDS))
    client, sent = replaying("vllm", answering(200, body))
    assert client.score_many([(IDS, SPANS), (other, [(3, 5)])]) == [[-1.75, -2.125], [-5.0]]
    assert sent[0].body["prompt"] == [IDS, other]


def test_no_span_makes_no_call():
    client, sent = replaying("vllm", answering(500, {}))
    assert client.score(IDS, []) == [] and sent == []


def test_a_clamped_minus_infinity_is_a_named_error_not_a_number():
    client, _ = replaying("vllm", answering(200, completion(choice(0, IDS, {**LOGPROB, 10: -9999.0}))))
    with pytest.raises(PermanentError, match=r"-9999.0 \(vLLM's clamp of -inf\) for token 151645 at position 10"):
        client.score(IDS, SPANS)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(prompt_logprobs=c["prompt_logprobs"][:-1]), "10 prompt_logprobs for a prompt of 11 tokens"),
    (lambda c: c.pop("prompt_logprobs"), "without prompt_logprobs"),
    (lambda c: c["prompt_logprobs"].__setitem__(4, {"999": {"logprob": -1.0, "rank": 1, "decoded_token": "?"}}),
     "no log-probability of token 151645 at position 4"),
])
def test_an_answer_that_does_not_fit_the_prompt_fails_loudly(change, message):
    c = choice(0, IDS)
    change(c)
    client, _ = replaying("vllm", answering(200, completion(c)))
    with pytest.raises(PermanentError, match=message):
        client.score(IDS, SPANS)


def test_priority_is_sent_only_when_set_and_alternates_go_lower():
    client, sent = replaying("vllm", answering(200, completion(choice(0, IDS))), priority=5)
    client.score(IDS, SPANS)
    assert sent[0].body["priority"] == 5
    client, sent = replaying("vllm", sse({"choices": [{"index": 0, "text": "hi"}]}, "[DONE]"), priority=5)
    assert client.complete([1, 2]) == "hi"
    assert sent[0].body["priority"] == 4 and sent[0].body["stream"] is True


def test_the_400_for_priority_names_the_setting_to_clear():
    body = {"error": {"message": "Got priority 5 but Priority scheduling is not enabled.",
                      "type": "BadRequestError", "param": None, "code": 400}}
    client, _ = replaying("vllm", answering(400, body), priority=5)
    with pytest.raises(PermanentError) as e:
        client.score(IDS, SPANS)
    message = str(e.value)
    assert "/v1/completions HTTP 400: Got priority 5 but Priority scheduling is not enabled." in message
    assert "scheduling priority is set to 5: clear it" in message and "--scheduling-policy priority" in message


def test_tokenize_is_at_the_server_root():
    client, sent = replaying("vllm", answering(200, {"count": 3, "max_model_len": 32768, "tokens": [1, 2, 3]}),
                             base_url="http://gpu-1:8000/v1")
    assert client.tokenize("hello") == [1, 2, 3]
    assert sent[0].url == "http://gpu-1:8000/tokenize"
    assert sent[0].body == {"model": "qwen", "prompt": "hello", "add_special_tokens": False}


def test_a_missing_tokenize_says_which_path_and_backend():
    client, _ = replaying("vllm", answering(404, {"detail": "Not Found"}))
    with pytest.raises(PermanentError, match=r"/tokenize HTTP 404: Not Found \(a vLLM server serves POST /tokenize; "
                                             r"check the agent's server API \(vllm\) and base URL"):
        client.tokenize("hello")


@pytest.mark.parametrize("status, body, error, message", [
    (400, {"error": {"message": "This model's maximum context length is 8 tokens.", "type": "BadRequestError",
                     "param": None, "code": 400}}, PermanentError, "maximum context length is 8 tokens"),
    (400, {"object": "error", "message": "old shape", "type": "BadRequestError", "param": None, "code": 400},
     PermanentError, "HTTP 400: old shape"),
    (422, {"detail": [{"type": "missing", "loc": ["body", "prompt"], "msg": "Field required", "input": {}}]},
     PermanentError, "HTTP 422: prompt: Field required"),
    (500, {"error": {"message": "EngineCore died", "type": "InternalServerError", "param": None, "code": 500}},
     TransientError, "HTTP 500: EngineCore died"),
])
def test_error_bodies_show_the_servers_message(status, body, error, message):
    client, _ = replaying("vllm", answering(status, body))
    with pytest.raises(error, match=message):
        client.score(IDS, SPANS)


def test_a_streamed_error_event_is_a_transient_error_with_its_message():
    event = {"error": {"message": "out of KV cache", "type": "InternalServerError", "param": None, "code": 500}}
    client, _ = replaying("vllm", sse(event, "[DONE]"))
    with pytest.raises(TransientError, match="/v1/completions error: out of KV cache"):
        client.complete([1])


def test_models_lists_the_served_names():
    body = {"object": "list", "data": [{"id": "qwen", "object": "model", "created": 1, "owned_by": "vllm",
                                         "root": "Qwen/Qwen3-8B", "parent": None, "max_model_len": 32768,
                                         "permission": []}]}
    client, sent = replaying("vllm", answering(200, body))
    assert client.models() == ["qwen"] and sent[0].url == "http://gpu-1:8000/v1/models"
