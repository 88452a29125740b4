"""What memscore's commands share beyond runs: stdout that may be closed early,
retry warnings kept out of the way, interrupts without a traceback, plurals."""

import contextlib
import logging
import os
import sys

from django.core.management.base import BaseCommand, CommandError

# scoring.client.errors logs a WARNING for each attempt it retries.
RETRY_LOGGER = "scoring.client.errors"
# The shell's status for a command stopped by SIGINT (128 + 2).
INTERRUPTED = 130


def plural(n, one, many=None):
    """'1 memory', '2 memories': the count and the word that goes with it."""
    return f"{n} {one if n == 1 else many or one + 's'}"


@contextlib.contextmanager
def quiet_retries(verbosity):
    """Below -v 2, only the error a command ends with: with a server down, each
    call's retried attempts would print a WARNING line before it (15 for one import)."""
    logger = logging.getLogger(RETRY_LOGGER)
    before = logger.level
    if verbosity < 2:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


class Command(BaseCommand):
    """A memscore command: retry warnings only with -v 2 or more, Ctrl-C a
    one-line error (exit status 130) rather than a traceback."""

    def execute(self, *args, **options):
        with quiet_retries(options.get("verbosity", 1)):
            try:
                return super().execute(*args, **options)
            except KeyboardInterrupt:
                raise CommandError("interrupted", returncode=INTERRUPTED) from None

    def out(self, line):
        """One line on stdout, at once (a script may be waiting on it). A reader
        that stopped reading (`| head -1`) took what it wanted: the command goes
        on, its later lines are dropped, and no BrokenPipeError is shown."""
        if getattr(self, "_stdout_closed", False):
            return
        try:
            self.stdout.write(line)
            self.stdout.flush()
        except BrokenPipeError:
            self._stdout_closed = True
            # Python would hit the closed pipe again flushing stdout on exit.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def err(self, line):
        """One line on stderr (progress, notes): what scripts do not read."""
        try:
            self.stderr.write(line)
            self.stderr.flush()
        except BrokenPipeError:
            pass
