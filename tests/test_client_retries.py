"""call_with_retries: a transient error is retried, and the error it finally
raises says how many attempts it took; a permanent one is raised at once, as it is."""

import pytest

from scoring.client.errors import OutcomeUnknown, PermanentError, TransientError, call_with_retries


def failing(error):
    tries = []

    def call():
        tries.append(1)
        raise error

    return call, tries


def test_a_transient_error_says_how_many_attempts_it_took(settings):
    settings.MEMSCORE_RETRY_BACKOFF = 0
    call, tries = failing(TransientError("/score: HTTP 503: busy", status=503))
    with pytest.raises(TransientError) as e:
        call_with_retries(call, attempts=3)
    assert len(tries) == 3
    assert str(e.value) == "/score: HTTP 503: busy (gave up after 3 attempts)"
    assert e.value.status == 503


def test_a_permanent_error_or_a_single_attempt_is_raised_as_it_is(settings):
    settings.MEMSCORE_RETRY_BACKOFF = 0
    call, tries = failing(PermanentError("/score: HTTP 400: bad prompt", status=400))
    with pytest.raises(PermanentError, match=r"^/score: HTTP 400: bad prompt$"):
        call_with_retries(call, attempts=3)
    assert len(tries) == 1
    call, tries = failing(OutcomeUnknown("/train: no answer"))
    with pytest.raises(OutcomeUnknown, match=r"^/train: no answer$"):
        call_with_retries(call, attempts=3, retry_unknown=False)
    assert len(tries) == 1
