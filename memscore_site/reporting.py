"""Django's error reports, with the password of any URL in them masked."""

import re

from django.views.debug import SafeExceptionReporterFilter

# scheme://user:password@host -> the password. A password holding "/" or "@"
# is percent-encoded in a URL, so neither ends it early.
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@\s]*):[^@/\s]+@")


class CredentialsFilter(SafeExceptionReporterFilter):
    """Django hides settings and request.META entries by name (KEY, SECRET,
    PASS, TOKEN, ...): REDIS_URL and CELERY_BROKER_URL pass that test with
    their passwords in them, and runserver copies the whole environment, with
    DATABASE_URL, into request.META. This masks a URL's password wherever a
    string holds one; the rest of the URL still shows which service it was."""

    def cleanse_setting(self, key, value):
        value = super().cleanse_setting(key, value)
        # Plain strings only: a lazy one (django-csp's nonce) is left unevaluated.
        if type(value) is str:
            return _URL_PASSWORD.sub(lambda m: f"{m[1]}:{self.cleansed_substitute}@", value)
        return value
