"""Ids outside a stock server's vocabulary (issue 13, defect 5): vLLM and SGLang
do not report their vocabulary's size, but their tokenizer refuses an id outside
it, so the import finds the bound with a few /detokenize calls and names the node."""

import pytest

from refserver.testing import run_refserver
from scoring.importing import SnapshotError, import_snapshot
from scoring.models import Agent, Snapshot
from tests.snapshot_data import snapshot_doc

pytestmark = pytest.mark.django_db

VOCAB = 2089  # the reference server's tokenizer


@pytest.fixture(scope="module", params=["vllm", "sglang"])
def stock(request, tmp_path_factory):
    with run_refserver(tmp_path_factory.mktemp(f"stock-{request.param}"), "--api", request.param) as server:
        yield request.param, server


@pytest.fixture
def agent(db, stock):
    backend, server = stock
    return Agent.objects.create(name="poc", base_url=server.base_url, model="memscore-ref", backend=backend)


def test_it_names_the_node_whose_ids_the_server_refuses(agent):
    doc = snapshot_doc(token_ids=True)
    doc["conversation"][4]["token_ids"] = [3, 99999, VOCAB]

    with pytest.raises(SnapshotError) as raised:
        import_snapshot(agent, doc)

    limit = f"outside the model's vocabulary (the server's /detokenize refuses ids from {VOCAB} on)"
    assert raised.value.errors == [
        f"conversation[4].token_ids[1]: 99999 is {limit}",
        f"conversation[4].token_ids[2]: {VOCAB} is {limit}",
    ]
    assert not Snapshot.objects.exists()


def test_it_imports_ids_the_server_accepts(agent):
    doc = snapshot_doc(token_ids=True)
    doc["conversation"][4]["token_ids"] = [3, VOCAB - 1]

    assert import_snapshot(agent, doc).node_count > 0
