"""The run page's parameters and token counts: a run of some memories names
its keys, and what memscore asked of the server reads apart from what the
server's cache served."""

import pytest
from django.urls import reverse

from scoring.importing import import_snapshot
from scoring.models import Agent, ScoreCall, ScoringRun
from scoring.models.runs import Mode, RunStatus
from tests.snapshot_data import snapshot_doc


@pytest.fixture
def snapshot(db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    return import_snapshot(agent, snapshot_doc(token_ids=True))


def run_of(snapshot, mode, tokens_scored=0, **params):
    return ScoringRun.objects.create(agent=snapshot.agent, snapshot=snapshot, mode=mode, params=params,
                                     status=RunStatus.SUCCEEDED, calls_total=2, calls_done=2,
                                     tokens_scored=tokens_scored)


def page(cast, run):
    return cast.client_for(cast.viewer).get(reverse("run_detail", args=[run.pk])).text


def test_a_run_of_some_memories_names_its_keys(cast, snapshot):
    keys = [f"people/<b>{i}</b>" for i in range(10)]
    html = page(cast, run_of(snapshot, Mode.FULL, keys=keys))

    assert "10 items" not in html
    assert ", ".join(f"people/&lt;b&gt;{i}&lt;/b&gt;" for i in range(10)) in html


def test_a_long_list_of_keys_is_cut_short(cast, snapshot):
    keys = [f"k{i}" for i in range(60)]
    html = page(cast, run_of(snapshot, Mode.FULL, keys=keys))
    assert "k49 and 10 more" in html and "k50" not in html


def calls(run, *prompts):
    for seq, (prompt, cached, *computed) in enumerate(prompts):
        ScoreCall.objects.create(run=run, seq=seq, range_end=1, status=ScoreCall.Status.DONE,
                                 prompt_tokens=prompt, tokens=prompt, cached_tokens=cached,
                                 computed_tokens=computed[0] if computed else None)


def test_tokens_asked_and_computed_read_as_two_things(cast, snapshot):
    # Asked for every position, and the cache served some of them (a prompt
    # scored before): computed is what the server says, never asked - cached.
    run = run_of(snapshot, Mode.FINETUNE, tokens_scored=1913, count=10)
    calls(run, (1000, 600, 400), (913, 612, 301))

    html = page(cast, run)

    asked = html.split('id="tokens-asked">')[1].split("</div>")[0]
    assert "1,913 <span class=\"muted small\">of 1,913 in the calls' prompts" in asked
    assert "(none left out)" in asked and "saved" not in asked
    computed = html.split('id="tokens-computed">')[1].split("</div>")[0]
    assert "701 <span class=\"muted small\">of the 1,913 prompt tokens it was sent; 1,212 served from its cache" in (
        computed)
    assert 'id="tokens-cached"' not in html


def test_a_server_that_says_only_what_its_cache_served_gets_that_line(cast, snapshot):
    run = run_of(snapshot, Mode.FINETUNE, tokens_scored=1913, count=10)
    calls(run, (1000, 600), (913, 612))  # SGLang: cached_tokens, nothing of what it computed

    html = page(cast, run)

    cached = html.split('id="tokens-cached">')[1].split("</div>")[0]
    assert "1,212 <span class=\"muted small\">of the 1,913 prompt tokens it was sent: reused, not computed" in cached
    assert 'id="tokens-computed"' not in html


def test_an_active_run_before_its_first_answer_says_so_under_the_same_label(cast, snapshot):
    run = run_of(snapshot, Mode.FULL)
    ScoringRun.objects.filter(pk=run.pk).update(status=ScoringRun.Status.RUNNING)
    ScoreCall.objects.create(run=run, seq=0, range_end=1, status=ScoreCall.Status.RUNNING)

    html = page(cast, ScoringRun.objects.get(pk=run.pk))

    assert "Tokens asked of the server</dt><dd class=\"muted\">none answered yet" in html
    assert "Tokens scored" not in html


def test_what_causal_windows_left_out_is_said_as_memscores(cast, snapshot):
    run = run_of(snapshot, Mode.FULL, tokens_scored=1200)
    calls(run, (1000, None), (1000, None))

    html = page(cast, run)

    assert "(40% left out: no call could change them)" in html
    assert 'id="tokens-cached"' not in html
