"""{{ when|ago }}: "just now", then Django's timesince ("5 minutes ago");
{{ seconds|duration }}: "6 h", "90 min", "45 s"."""

from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value):
    """How long ago `value` was; "just now" under a minute (timesince says "0 minutes")."""
    if not value:
        return ""
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value)} ago"


@register.filter
def duration(seconds):
    """A number of seconds as a person reads it: "6 h", "1 h 30 min", "90 s"
    (a setting kept in seconds read "21600 s" on the agent page)."""
    try:
        seconds = int(seconds)
    except (TypeError, ValueError):
        return ""
    if seconds < 120 or seconds % 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    if not hours:
        return f"{minutes} min"
    if hours >= 48 and not hours % 24 and not minutes:
        return f"{hours // 24} d"
    return f"{hours} h" + (f" {minutes} min" if minutes else "")
