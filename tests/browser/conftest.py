"""Playwright for Python driving Debian's Chromium (never a downloaded browser).

Without /usr/bin/chromium the browser tests skip, except where
MEMSCORE_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.
"""

import contextlib
import os
import shutil

import pytest
from django.db import connections

from tests.conftest import ARTIFACTS

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def browser():
    # Per test, not per session: while Playwright's sync API is open its event
    # loop runs in this thread, and any other test's asyncio.run() would fail.
    require_chromium()
    with open_browser() as browser:
        yield browser


def require_chromium():
    """Skip the test without Chromium (fail it in CI)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("MEMSCORE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium not found at {CHROMIUM}; CI must run the browser tests")
        pytest.skip("Chromium is not installed (apt-get install chromium)")


@contextlib.contextmanager
def open_browser():
    """Chromium, through Playwright's sync API, for the length of the block."""
    # Playwright's sync API runs an event loop in this thread; Django's ORM
    # calls from the test body are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # While that loop runs, Django keeps this thread's database
            # connections apart from its usual ones (asgiref's Local is
            # context-local in a thread with a running loop): the test body's
            # queries opened one of their own, closed only here, while the
            # loop still runs. Left open it outlived the session, and
            # PostgreSQL refused to drop the test database ("being accessed by
            # other users").
            connections.close_all()


@pytest.fixture
def screenshots(request):
    """shot(page, name) saves a full-page PNG under test-artifacts/<test name>/."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 1000))

    def shot(page, name):
        page.screenshot(path=str(folder / f"{next(counter):02d}-{name}.png"), full_page=True)

    return shot


def login(browser, live_server, username, password, **context_options):
    """A page logged in as `username`; `context_options` for the browser
    context (viewport, has_touch, is_mobile: a phone)."""
    context = browser.new_context(**{"viewport": {"width": 1400, "height": 900}, **context_options})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    return page
