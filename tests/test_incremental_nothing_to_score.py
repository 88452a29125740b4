"""Why an incremental run has nothing to score names the real reason for each
skipped memory (a snapshot with no response blamed "past 60%")."""

from scoring.modes.incremental import PAST_CUTOFF, nothing_to_score

RECENT = {"key": "a", "reason": PAST_CUTOFF}
LONE = {"key": "b", "reason": "no response after it"}


def test_nothing_due():
    assert nothing_to_score([]) == "no memory of this snapshot is due for scoring"


def test_too_recent_in_the_singular_and_plural():
    assert nothing_to_score([RECENT]) == f"the one due memory is too recent to score ({PAST_CUTOFF})"
    assert nothing_to_score([RECENT, RECENT]) == f"the 2 due memories are too recent to score ({PAST_CUTOFF})"


def test_no_response_after_them_is_not_called_too_recent():
    assert nothing_to_score([LONE, LONE]) == "2 due memories have no response after them"
    assert nothing_to_score([RECENT, LONE]) == (
        f"the one due memory is too recent to score ({PAST_CUTOFF}); one due memory has no response after it"
    )
