"""Contract: memscore's SGLang client against bodies shaped as SGLang's source defines
them (io_struct.py's GenerateReqInput, the scheduler's input_token_logprobs with its
first entry null, http_server.py's and the OpenAI endpoints' error bodies,
serving_tokenize.py; see scoring/client/sglang.py for the versions read)."""

import pytest

from scoring.client import PermanentError, SglangClient, TransientError
from tests.client_contract import answering, replaying, sse

IDS = [151644, 77091, 198, 9707, 151645, 198, 151644, 77091, 198, 17, 151645]
SPANS = [(3, 5), (9, 11)]
LOGPROB = {3: -1.25, 4: -0.5, 9: -2.0, 10: -0.125}


def generate_answer(ids, start, values=LOGPROB, finish=None):
    """/generate's answer for one prompt: input_token_logprobs from logprob_start_len,
    [logprob, token_id, text], the first always null, text null (return_text_in_logprobs false)."""
    entries = [[None, ids[start], None]]
    entries += [[values.get(p, -3.0), ids[p], None] for p in range(start + 1, len(ids))]
    return {
        "text": "x",
        "output_ids": [11],
        "meta_info": {
            "id": "a1b2", "finish_reason": finish or {"type": "length", "length": 1},
            "prompt_tokens": len(ids), "weight_version": "default", "completion_tokens": 1,
            "cached_tokens": 0, "e2e_latency": 0.01,
            "input_token_logprobs": entries, "output_token_logprobs": [[-0.1, 11, None]],
        },
    }


@pytest.mark.parametrize("base_url", ["http://gpu-1:30000", "http://gpu-1:30000/v1"])
def test_it_asks_from_just_before_the_first_needed_position_and_sums_the_spans(base_url):
    client, sent = replaying("sglang", answering(200, generate_answer(IDS, 2)), base_url=base_url)
    assert isinstance(client, SglangClient)
    assert client.score(IDS, SPANS, first_needed=3) == [-1.75, -2.125]
    assert sent[0].url == "http://gpu-1:30000/generate"
    assert sent[0].body == {
        "input_ids": IDS, "sampling_params": {"max_new_tokens": 1, "temperature": 0},
        "return_logprob": True, "logprob_start_len": 2,
    }


def test_first_needed_defaults_to_the_first_span():
    client, sent = replaying("sglang", answering(200, generate_answer(IDS, 8)))
    assert client.score(IDS, [(9, 11)]) == [-2.125]
    assert sent[0].body["logprob_start_len"] == 8


def test_a_count_that_does_not_match_the_prompt_fails_loudly():
    answer = generate_answer(IDS, 2)
    answer["meta_info"]["input_token_logprobs"].pop()
    client, _ = replaying("sglang", answering(200, answer))
    with pytest.raises(PermanentError, match=r"8 input_token_logprobs for a prompt of 11 tokens from "
                                             r"logprob_start_len 2 \(expected 9\)"):
        client.score(IDS, SPANS, first_needed=3)


def test_a_null_where_a_number_is_needed_is_a_named_error():
    client, _ = replaying("sglang", answering(200, generate_answer(IDS, 2, {**LOGPROB, 10: None})))
    with pytest.raises(PermanentError, match="no log-probability .* for token 151645 at position 10"):
        client.score(IDS, SPANS, first_needed=3)


def test_entries_for_other_tokens_are_refused():
    answer = generate_answer(IDS, 2)
    answer["meta_info"]["input_token_logprobs"][1][1] = 5
    client, _ = replaying("sglang", answering(200, answer))
    with pytest.raises(PermanentError, match=r"input_token_logprobs\[1\] is for token 5"):
        client.score(IDS, SPANS, first_needed=3)


def test_an_answer_without_input_logprobs_says_so():
    answer = generate_answer(IDS, 2)
    del answer["meta_info"]["input_token_logprobs"]
    client, _ = replaying("sglang", answering(200, answer))
    with pytest.raises(PermanentError, match="without meta_info.input_token_logprobs"):
        client.score(IDS, SPANS)


def test_an_aborted_request_is_transient():
    answer = generate_answer(IDS, 2, finish={"type": "abort", "message": "server is draining"})
    client, _ = replaying("sglang", answering(200, answer))
    with pytest.raises(TransientError, match="aborted the request: server is draining"):
        client.score(IDS, SPANS)


def test_priority_is_sent_only_when_set_and_alternates_go_higher():
    client, sent = replaying("sglang", answering(200, generate_answer(IDS, 2)))
    client.score(IDS, SPANS)
    assert "priority" not in sent[0].body
    client, sent = replaying("sglang", answering(200, generate_answer(IDS, 2)), priority=3)
    client.score(IDS, SPANS)
    assert sent[0].body["priority"] == 3
    client, sent = replaying("sglang", sse({"choices": [{"index": 0, "text": "ok"}]}, "[DONE]"), priority=3)
    assert client.complete([1]) == "ok"
    assert sent[0].url == "http://gpu-1:8000/v1/completions" and sent[0].body["priority"] == 4


@pytest.mark.parametrize("status, body, message", [
    # http_server.py's _create_error_response for a ValueError of /generate
    (400, {"error": {"message": "The input (11 tokens) is longer than the model's context length (8 tokens)."}},
     "/generate HTTP 400: The input \\(11 tokens\\) is longer"),
    # the OpenAI endpoints' ErrorResponse
    (400, {"object": "error", "message": "bad input_ids", "type": "BadRequestError", "param": None, "code": 400},
     "/generate HTTP 400: bad input_ids"),
    (422, {"detail": [{"type": "list_type", "loc": ["body", "input_ids"], "msg": "Input should be a valid list"}]},
     "/generate HTTP 422: input_ids: Input should be a valid list"),
])
def test_error_bodies_show_the_servers_message(status, body, message):
    client, _ = replaying("sglang", answering(status, body))
    with pytest.raises(PermanentError, match=message):
        client.score(IDS, SPANS)


def test_a_priority_refusal_names_the_setting():
    body = {"error": {"message": "priority is not enabled: start with --enable-priority-scheduling"}}
    client, _ = replaying("sglang", answering(400, body), priority=2)
    with pytest.raises(PermanentError, match="scheduling priority is set to 2: clear it"):
        client.score(IDS, SPANS)


def test_tokenize_is_at_the_server_root():
    client, sent = replaying("sglang", answering(200, {"tokens": [9707], "count": 1, "max_model_len": 40960}),
                             base_url="http://gpu-1:30000/v1")
    assert client.tokenize("Hello") == [9707]
    assert sent[0].url == "http://gpu-1:30000/tokenize"
    assert sent[0].body == {"model": "qwen", "prompt": "Hello", "add_special_tokens": False}


def test_a_missing_tokenize_says_which_path_and_backend():
    client, _ = replaying("sglang", answering(404, {"detail": "Not Found"}))
    with pytest.raises(PermanentError, match=r"/tokenize HTTP 404: Not Found \(a SGLang server .*\(sglang\)"):
        client.tokenize("Hello")
