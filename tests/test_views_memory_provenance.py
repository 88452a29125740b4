"""The memories pages say where each figure comes from (issue 12, defect 7):
which run and snapshot the importance is from, the current text apart from
the text that run scored, what weight is, and no "never scored" beside an
importance."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scoring.models import Agent, Memory, Node, Section, Snapshot
from tests.matrix_data import matrix_run

OLD, NEW = "Alice runs the sync on Thursdays.", "Alice left the team in May."


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")


@pytest.fixture
def run(agent):
    """A full run on an old snapshot; then a newer, short snapshot changed
    alice's text and brought a new memory, bob, that no run has scored."""
    run = matrix_run(agent, [[1.5, 0.0, 2.0], [0.3, 0.2, 0.1]], keys=["people/alice", "places/office"],
                     memory_texts=[OLD, "The office is in Kepler."])
    later = Snapshot.objects.create(agent=agent, taken_at=timezone.now() + timedelta(hours=1),
                                    source=Snapshot.Source.CLI, memory_count=2)
    alice = Memory.objects.get(agent=agent, key="people/alice")
    bob = Memory.objects.create(agent=agent, key="people/bob", text="Bob joined.")
    for index, (memory, text) in enumerate([(alice, NEW), (bob, "Bob joined.")]):
        Node.objects.create(snapshot=later, section=Section.IDENTITY, index=index, memory_key=memory.key,
                            memory=memory, text=text)
    Memory.objects.filter(pk=alice.pk).update(text=NEW)  # what an import does: the text last seen
    return run


def test_the_list_says_which_run_and_snapshot_and_which_text(cast, run, agent):
    page = cast.client_for(cast.viewer).get(reverse("memory_list", args=[agent.pk]))
    text = page.text

    taken = timezone.localtime(run.snapshot.taken_at).strftime("%Y-%m-%d %H:%M")
    assert f"Run #{run.pk} (snapshot of {taken})" in text
    assert f"changed since run #{run.pk}" in text and OLD in text  # the old text in the badge's title
    assert f"not in run #{run.pk}" in text  # bob
    # Weight is background scoring's, explained, and an absent one is not "never scored".
    assert "never scored" not in text
    assert "Background scoring" in text and reverse("glossary") + "#weight" in text
    assert reverse("run_compare_choose", args=[run.pk]) in text


def test_the_detail_shows_the_current_text_and_the_scored_one(cast, run, agent):
    alice = Memory.objects.get(agent=agent, key="people/alice")
    page = cast.client_for(cast.viewer).get(reverse("memory_detail", args=[alice.pk]))
    text = page.text

    assert "Current text" in text and NEW in text
    assert f"Text run #{run.pk} scored" in text and OLD in text
    assert f"The text changed since run #{run.pk}" in text
    assert f"In run <a href=\"{reverse('run_detail', args=[run.pk])}\">#{run.pk}</a>" in text
    assert "never scored" not in text and "none yet" in text
    assert reverse("glossary") + "#weight" in text
    # Responses numbered one way: response #3 is conversation entry 5.
    assert "response #3 (entry 5)" in text and "response #1 (entry 1)" in text


def test_the_detail_of_an_unchanged_memory_shows_one_text(cast, run, agent):
    office = Memory.objects.get(agent=agent, key="places/office")
    page = cast.client_for(cast.viewer).get(reverse("memory_detail", args=[office.pk]))
    assert "Current text" in page.text and "scored</h3>" not in page.text and "text-changed" not in page.text


def test_the_detail_of_a_memory_the_run_did_not_have_says_so(cast, run, agent):
    bob = Memory.objects.get(agent=agent, key="people/bob")
    page = cast.client_for(cast.viewer).get(reverse("memory_detail", args=[bob.pk]))
    assert f"Not in the snapshot run #{run.pk} scored" in page.text
