"""At 1280 px the decision tables sit in half of the page (.split), and the
walkthrough saw their times broken over two or three lines beside a long
comment ("2026-11-27 / 00:22:04"). A time stays on one line; the comment wraps."""

import pytest
from candidate_factory import make_candidate
from django.urls import reverse

from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]

COMMENT = "Reversing: the physio advice is a medical claim we should not train on, honestly counterproductive"

# Lines each <time> of the two tables takes (an inline box broken over n lines has n client rects).
LINES = """() => Array.from(document.querySelectorAll("#decisions-table time, #decision-history time"))
    .map((t) => t.getClientRects().length)"""


def test_decision_times_stay_on_one_line_at_1280_px(transactional_db, browser, live_server, cast, agent,
                                                     screenshots):
    c = make_candidate(agent)
    c.decide(cast.reviewer2, "approve", COMMENT)
    c.decide(cast.reviewer, "reject", COMMENT, confirm_reversal=True)  # a reversal: the history shows too
    page = login(browser, live_server, "vera", cast.password)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + reverse("candidate_detail", args=[c.pk]))
    page.wait_for_selector("#decision-history")
    screenshots(page, "decisions-1280")
    lines = page.evaluate(LINES)
    assert len(lines) == 2 + 3  # two reviews; two decisions and the reversal
    assert lines == [1] * len(lines)
    page.context.close()
