"""Every main page works under the Content-Security-Policy: Chromium reports
no violation (no inline script, handler or style the policy refuses), on the
team's pages and the admin's."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from scoring.models import Memory
from tests.browser.conftest import login
from tests.candidate_factory import make_candidate
from tests.matrix_data import matrix_run

pytestmark = [pytest.mark.browser]

# Runs before any page script; CSP does not apply to it (Playwright injects it).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


def _pages(run, candidate):
    memory = Memory.objects.filter(agent=run.agent).order_by("id").first()
    return [
        reverse("home"),
        reverse("agent_list"),
        reverse("agent_detail", args=[run.agent_id]),
        reverse("snapshot_detail", args=[run.snapshot_id]),
        reverse("run_list"),
        reverse("run_detail", args=[run.pk]),
        reverse("heatmap", args=[run.pk]),
        reverse("memory_list", args=[run.agent_id]),
        reverse("memory_detail", args=[memory.pk]),
        reverse("review_queue"),
        reverse("candidate_list"),
        reverse("candidate_detail", args=[candidate.pk]),
        reverse("train_job_list"),
        reverse("activity_list"),
        reverse("admin:index"),
        reverse("admin:scoring_candidate_changelist"),
        reverse("admin:auth_user_change", args=[User.objects.get(username="root").pk]),
    ]


@pytest.mark.django_db(transaction=True)
def test_it_shows_every_main_page_without_a_csp_violation(browser, live_server, cast, agent):
    User.objects.create_superuser("root", "root@example.com", cast.password)
    run = matrix_run(agent, [[1.5, -2.0, 0.0]] * 3)
    candidate = make_candidate(agent)
    page = login(browser, live_server, "root", cast.password)
    page.add_init_script(RECORD_VIOLATIONS)
    console_errors = []
    page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))

    found = {}
    for url in _pages(run, candidate):
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == 200, url
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        if url == reverse("heatmap", args=[run.pk]):
            page.wait_for_function("document.body.dataset.heatmapReady === '1'")
        violations = page.evaluate("window.__cspViolations")
        if violations:
            found[url] = violations
    assert not found
    assert not [e for e in console_errors if "Content Security Policy" in e]
    page.context.close()


@pytest.mark.django_db(transaction=True)
def test_it_submits_the_review_queues_agent_choice_without_inline_script(browser, live_server, cast, agent):
    # Was an inline onchange handler, which the policy refuses.
    make_candidate(agent)
    page = login(browser, live_server, cast.reviewer.username, cast.password)
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(f"{live_server.url}{reverse('review_queue')}")
    with page.expect_navigation():
        page.select_option("select[name=agent]", str(agent.pk))
    assert f"agent={agent.pk}" in page.url
    assert page.evaluate("window.__cspViolations") == []
    page.context.close()
