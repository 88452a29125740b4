"""/health and /models, the endpoints that tell a client what it is talking to."""

from __future__ import annotations


def test_health_says_ok_at_the_root_and_under_v1(server, client):
    for url in (f"{server.root_url}/health", "/health"):
        response = client.get(url)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["model"] == "memscore-ref"
        assert body["vocab_size"] > 258  # the specials, 256 bytes, then corpus pieces


def test_models_lists_the_served_model(client):
    body = client.get("/models").json()
    assert body["object"] == "list"
    [model] = body["data"]
    assert model["id"] == "memscore-ref"
    assert model["object"] == "model"
    assert model["max_model_len"] == 262144


def test_detokenize_turns_ids_back_into_text(client, tokenize):
    text = "<|im_start|>user\nIs it raining in Łódź?<|im_end|>\n"
    assert client.post("/detokenize", json={"model": "memscore-ref", "tokens": tokenize(text)}).json() == {"prompt": text}
    assert client.post("/detokenize", json={"tokens": []}).json() == {"prompt": ""}
