"""A run's error names its failed calls by what they left out (results.error_summary)."""

from types import SimpleNamespace

from scoring.engine.results import error_summary
from scoring.models import ScoreCall

Filter = ScoreCall.Filter


def call(seq, *, baseline=1, key=None, filter=Filter.SKIP_KEY, removed=None, error="HTTP 500"):
    memory = SimpleNamespace(key=key) if key else None
    return SimpleNamespace(seq=seq, baseline_id=baseline, memory_id=1 if key else None, memory=memory,
                           filter=filter, removed_keys=removed, error=error)


def test_it_names_each_failed_call_by_what_it_left_out():
    failed = [
        call(0, baseline=None, filter=Filter.NONE),
        call(3, key="people/bob"),
        # A group's call, or an estimate's random ablation: not every memory.
        call(7, filter=Filter.SKIP_KEYS, removed=["a", "b", "c"]),
        call(8, filter=Filter.SKIP_KEYS, removed=["a"]),
        call(9, filter=Filter.SKIP_ALL),
    ]
    assert error_summary(10, failed) == (
        "5 of 10 calls failed; call 0 (baseline): HTTP 500; call 3 (without people/bob): HTTP 500; "
        "call 7 (without 3 memories together): HTTP 500; call 8 (without 1 memory together): HTTP 500; "
        "call 9 (without memories): HTTP 500"
    )
