"""An estimate or a groups run never costs more than the exact matrix
silently: the estimate's default K scales with the memories, the start form
refuses a K that makes as many calls as the exact matrix, the run pages say
plainly when a run cost more, and a groups run's total is marked provisional
while stage 2 may add calls."""

from django.urls import reverse

from scoring.context import Outline
from scoring.engine import start_run
from scoring.forms import StartRunForm
from scoring.importing import import_snapshot
from scoring.models import ScoreCall, ScoringRun
from scoring.models.runs import Mode, RunStatus
from scoring.modes import estimate
from tests.engine_support import conversation_doc, make_snapshot
from tests.snapshot_data import snapshot_doc


def test_the_default_k_is_half_the_memories_within_its_bounds():
    assert [estimate.default_ablations(n) for n in (4, 16, 24, 100, 128, 500)] == [8, 8, 12, 50, 64, 64]


def test_a_run_without_k_takes_the_scaled_default(agent):
    snapshot = make_snapshot(agent, conversation_doc(agent.name, extra_memories=18))
    n = len(Outline(snapshot).keys())
    assert n >= 24
    run = start_run(snapshot, "estimate", params={"seed": 1})
    assert run.params["ablations"] == n // 2
    assert run.calls_total == n // 2 + 1 < run.result["exact_calls"] == n + 1
    # The page offers that K, and refuses one that makes as many calls as the exact matrix.
    shown = dict(StartRunForm(snapshot=snapshot).param_forms())
    assert [form for mode, form in shown.items() if mode.name == "estimate"][0]["ablations"].initial == n // 2
    form = StartRunForm({"mode": "estimate", "ablations": str(n)}, snapshot=snapshot)
    assert not form.is_valid()
    assert f"{n} ablations make {n + 1} calls, no fewer than the {n + 1} of the exact" in form.errors["ablations"][0]
    assert StartRunForm({"mode": "estimate", "ablations": str(n - 1)}, snapshot=snapshot).is_valid()


def test_the_page_refuses_any_estimate_of_a_few_memories(cast, db):
    from scoring.models import Agent

    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    snapshot = import_snapshot(agent, snapshot_doc(token_ids=True))  # 4 memories: 5 exact calls
    html = cast.client_for(cast.operator).get(reverse("snapshot_detail", args=[snapshot.pk])).text
    assert "Not worth it here: 4 memories take 5 calls as an exact full matrix" in html
    response = cast.client_for(cast.operator).post(reverse("run_start", args=[snapshot.pk]), {"mode": "estimate"})
    assert "8 ablations make 9 calls, no fewer than the 5 of the exact full matrix" in response.text
    assert not ScoringRun.objects.exists()
    # The command line may still compare (bench/estimate_vs_exact.py does), and its report warns.
    run = start_run(snapshot, "estimate", params={"ablations": 64})
    lines = []
    estimate.MODE.report(ScoringRun.objects.get(pk=run.pk), lines.append)
    assert "WARNING: this estimate made 65 calls, more than the exact full matrix's 5" in lines[-1]


def test_the_run_pages_say_when_a_run_cost_more_than_the_exact_matrix(cast, db):
    from scoring.models import Agent

    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    snapshot = import_snapshot(agent, snapshot_doc(token_ids=True))
    client = cast.client_for(cast.viewer)
    costly = ScoringRun.objects.create(agent=agent, snapshot=snapshot, mode=Mode.ESTIMATE, status=RunStatus.RUNNING,
                                       params={"ablations": 64, "seed": 5}, calls_total=65,
                                       result={"exact_calls": 25, "ablations": 64, "estimate": True})
    html = client.get(reverse("run_detail", args=[costly.pk])).text
    assert "This estimate made 65 score calls, more than the 25 of the exact full matrix" in html
    cheap = ScoringRun.objects.create(agent=agent, snapshot=snapshot, mode=Mode.ESTIMATE, status=RunStatus.RUNNING,
                                      params={"ablations": 12, "seed": 5}, calls_total=13,
                                      result={"exact_calls": 25, "ablations": 12, "estimate": True})
    assert "estimate-costlier" not in client.get(reverse("run_detail", args=[cheap.pk])).text

    groups = ScoringRun.objects.create(
        agent=agent, snapshot=snapshot, mode=Mode.GROUPS, status=RunStatus.SUCCEEDED, calls_total=30,
        calls_done=30, params={"separator": "/", "threshold": 1.0, "redundancy_margin": 1.0, "max_pairs": 100},
        result={"groups": [], "redundant": [], "calls_used": 30, "exact_calls": 25, "pairs": [], "pairs_found": 0,
                "stage2_groups": 0, "exact_memories": [], "group_only": []})
    html = client.get(reverse("run_detail", args=[groups.pk])).text
    assert "30 calls, more than the 25 of the exact full matrix" in html


def test_a_groups_runs_total_is_provisional_while_stage_2_may_add_calls(cast, db):
    from scoring.models import Agent

    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    snapshot = import_snapshot(agent, snapshot_doc(token_ids=True))
    run = start_run(snapshot, "groups", params={})
    ScoringRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    client = cast.client_for(cast.viewer)
    html = client.get(reverse("run_detail", args=[run.pk])).text
    assert f"0 done of {run.calls_total} score calls so far" in html and 'id="calls-provisional"' in html
    assert f"0 / {run.calls_total} calls so far" in client.get(reverse("run_list")).text
    # Every group's call settled: the total is final.
    ScoreCall.objects.filter(run=run).update(status=ScoreCall.Status.DONE)
    ScoringRun.objects.filter(pk=run.pk).update(calls_done=run.calls_total)
    html = client.get(reverse("run_detail", args=[run.pk])).text
    assert "calls-provisional" not in html and "score calls so far" not in html
    assert "calls so far" not in client.get(reverse("run_list")).text
