"""The browser closes the database connection its test body opened (a
separate one while Playwright's loop runs: left open, PostgreSQL refused to
drop the test database at the end of the session)."""

import pytest
from django.db import connections

from tests.browser.conftest import open_browser, require_chromium


@pytest.mark.django_db(transaction=True)
def test_it_closes_the_connection_the_test_body_opened():
    require_chromium()
    with open_browser():
        inside = connections["default"]
        inside.ensure_connection()
        assert inside.connection is not None
    assert inside.connection is None
