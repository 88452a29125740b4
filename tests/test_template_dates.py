"""{{ when|ago }}: "just now" under a minute (timesince said "0 minutes ago")."""

from datetime import timedelta

from django.template import Context, Template
from django.utils import timezone


def render(when):
    return Template("{% load dates %}{{ when|ago }}").render(Context({"when": when}))


def test_it_says_just_now_under_a_minute():
    assert render(timezone.now() - timedelta(seconds=20)) == "just now"


def test_it_says_how_long_ago_after_that():
    assert render(timezone.now() - timedelta(minutes=5, seconds=3)) == "5\xa0minutes ago"
    assert render(timezone.now() - timedelta(days=2, hours=3)) == "2\xa0days, 3\xa0hours ago"


def test_nothing_for_no_date():
    assert render(None) == ""
