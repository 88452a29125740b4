"""A list filter that cannot apply, in a real browser: the problem is shown
above an empty list on a phone without widening the page, the form shows what
was typed (a select keeps an unknown value, a number field keeps text), and
the clear link brings the whole list back."""

import pytest
from django.urls import reverse

from tests.browser.conftest import login
from tests.candidate_factory import make_candidate
from tests.matrix_data import matrix_run

pytestmark = [pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_each_list_names_its_bad_filter_on_a_phone_and_clears_it(browser, live_server, cast, agent, screenshots):
    run = matrix_run(agent, [[1.0, -2.0]] * 2)
    make_candidate(agent, divergence=3.0)
    page = login(browser, live_server, cast.reviewer.username, cast.password)
    page.set_viewport_size({"width": 390, "height": 800})
    pages = [
        (reverse("run_list") + "?agent=999&status=bogus", "Agent “999”: there is no such agent.", "runs"),
        (reverse("memory_list", args=[agent.pk]) + "?flag=nope", "Show “nope”: not one of the choices.",
         "memories"),
        (reverse("candidate_list") + "?max_divergence=abc", "Divergence to “abc”: not a number.", "candidates"),
        (reverse("review_queue") + "?agent=999", "Agent “999”: there is no such agent.", "queue"),
    ]
    for url, said, name in pages:
        page.goto(live_server.url + url)
        notice = page.locator("#filter-errors")
        assert said in notice.inner_text(), url
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
        screenshots(page, name)

    # What was typed is what the form shows.
    page.goto(live_server.url + reverse("run_list") + "?agent=999&status=bogus")
    assert page.locator("select[name=agent]").input_value() == "999"
    assert page.locator("select[name=status]").input_value() == "bogus"
    page.goto(live_server.url + reverse("candidate_list") + "?max_divergence=abc")
    assert page.locator("input[name=max_divergence]").input_value() == "abc"

    # Clearing lists everything again.
    page.click("#filter-clear")
    page.wait_for_url(live_server.url + reverse("candidate_list"))
    assert page.locator("#filter-errors").count() == 0
    assert page.locator("table tbody tr").count() == 1
    page.goto(live_server.url + reverse("run_list") + "?agent=999")
    page.click("#filter-clear")
    page.wait_for_url(live_server.url + reverse("run_list"))
    assert page.locator(f'a[href="{reverse("run_detail", args=[run.pk])}"]').count() == 1

    # On the queue, choosing a real agent in place of the unknown one shows its queue.
    page.goto(live_server.url + reverse("review_queue") + "?agent=999")
    page.select_option("select[name=agent]", str(agent.pk))
    page.wait_for_url(f"**/review/?agent={agent.pk}")
    assert page.locator("#filter-errors").count() == 0
    page.context.close()


@pytest.mark.django_db(transaction=True)
def test_a_long_value_wraps_in_its_problem_on_every_list_at_390_px(browser, live_server, cast, agent, screenshots):
    # One unbroken word of 2,000 characters, cut to 60 in its line: on one line
    # it made the page 653 to 674 px wide.
    long_a, long_1 = "a" * 2000, "1" * 2000
    make_candidate(agent)
    page = login(browser, live_server, cast.operator.username, cast.password)
    page.set_viewport_size({"width": 390, "height": 800})
    for url in [
        f"{reverse('run_list')}?agent={long_a}",
        f"{reverse('run_list')}?mode={long_a}",
        f"{reverse('memory_list', args=[agent.pk])}?flag={long_a}",
        f"{reverse('candidate_list')}?min_divergence={long_1}",
        f"{reverse('candidate_list')}?agent={long_a}&memory={long_a}",
        f"{reverse('review_queue')}?agent={long_a}",
        f"{reverse('review_agreement')}?agent={long_a}",
        f"{reverse('activity_list')}?verb={long_a}&actor={long_a}",
    ]:
        page.goto(live_server.url + url)
        notice = page.locator("#filter-errors")
        where = url[:40]  # the URL in a failure's message, not its 2,000 letters
        assert "…”:" in notice.inner_text(), where  # the value, cut short, is in its line
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, where
        assert notice.bounding_box()["width"] <= 390, where
    screenshots(page, "long-value")
    page.context.close()


@pytest.mark.django_db(transaction=True)
def test_the_activity_dates_keep_what_was_typed_without_a_console_warning(browser, live_server, cast):
    page = login(browser, live_server, cast.operator.username, cast.password)
    warnings = []
    page.on("console", lambda m: warnings.append(m.text) if m.type in ("warning", "error") else None)
    url = live_server.url + reverse("activity_list")
    # A date input shows these as empty, and Chromium logs "The specified value
    # ... does not conform to the required format": text while they are named.
    for typed, shown in [("notadate", "notadate"), ("99999-01-01", "99999-01-01"), ("%00", "\\x00")]:
        page.goto(f"{url}?since={typed}")
        since = page.locator("input[name=since]")
        assert since.input_value() == shown and since.get_attribute("type") == "text", typed
        assert f"From “{shown}”: not a date." in page.locator("#filter-errors").inner_text()
    # A NUL reads the same in its text box as in its problem line.
    page.goto(f"{url}?actor=a%00b")
    assert page.locator("input[name=actor]").input_value() == "a\\x00b"
    assert "Who “a\\x00b”: null characters are not allowed." in page.locator("#filter-errors").inner_text()
    # Dates that were read stay date inputs, as a date input reads them.
    page.goto(f"{url}?since=2026-11-05&until=11/01/2026")
    until = page.locator("input[name=until]")
    assert until.get_attribute("type") == "date" and until.input_value() == "2026-11-01"
    assert "Until “11/01/2026”: the end date is before the start date." in page.locator("#filter-errors").inner_text()
    assert warnings == []
    page.context.close()
