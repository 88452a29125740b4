"""What memscore's commands share beyond runs: stdout that may be closed early,
retry warnings kept out of the way, interrupts without a traceback, plurals,
an agent named by its id or its name."""

import contextlib
import logging
import os
import signal
import sys
import threading

from django.core.management.base import BaseCommand, CommandError

# scoring.client.errors logs a WARNING for each attempt it retries.
RETRY_LOGGER = "scoring.client.errors"
# What stops a command as Ctrl-C does, and how a cancelled run's reason says it.
# SIGTERM: kill, systemd, docker stop, a CI timeout; SIGHUP: its terminal closed.
WHY = {
    signal.SIGINT: "interrupted (Ctrl-C)",
    signal.SIGTERM: "terminated (SIGTERM)",
    signal.SIGHUP: "hung up (SIGHUP)",
}


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C raises KeyboardInterrupt: each
    command's `except KeyboardInterrupt` (cancel the run done here, stop
    following one) does for them what it does for Ctrl-C."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signal.Signals(signum)
        self.why = WHY[self.signum]
        self.returncode = 128 + self.signum  # what a shell says of a process the signal killed: 130 for Ctrl-C
        # The start of the command's error: Ctrl-C's reads as it always has; a
        # signal the user may not have sent themselves is named.
        self.headline = "interrupted" if self.signum == signal.SIGINT else self.why


def interruption(interrupt):
    """The Interrupted a caught KeyboardInterrupt stands for (Python's own is Ctrl-C's)."""
    return interrupt if isinstance(interrupt, Interrupted) else Interrupted(signal.SIGINT)


def stopped_following(interrupt, what, where):
    """The error of a --wait that a signal (Ctrl-C, SIGTERM, SIGHUP) stopped:
    the command stops following `what` ("run 4, running"), not the work,
    which the workers finish (`where` says where to stop it)."""
    stop = interruption(interrupt)
    return CommandError(f"{stop.headline}: stopped following {what}; it is the workers' to finish ({where})",
                        returncode=stop.returncode)


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def _handling(signals, handler):
    """handler for each of signals while it lasts, then the handlers before.

    An ignored signal stays ignored (nohup ignores SIGHUP so that the command
    outlives its terminal). Python runs signal handlers in the main thread only,
    and only it may set them: a command run in another thread changes nothing."""
    before = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signals:
            # None: a handler set outside Python, which could not be put back.
            if signal.getsignal(signum) not in (signal.SIG_IGN, None):
                before[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, previous in before.items():
            signal.signal(signum, previous)


def stopping_as_ctrl_c():
    """SIGTERM and SIGHUP raise Interrupted while it lasts (Ctrl-C needs nothing:
    Python raises KeyboardInterrupt for it)."""
    return _handling((signal.SIGTERM, signal.SIGHUP), _raise_interrupted)


def ignoring_interrupts():
    """While a first interrupt's clean-up runs (cancelling the run): a second
    Ctrl-C, SIGTERM or SIGHUP would cut it short."""
    return _handling(WHY, signal.SIG_IGN)


def agent_arg(value):
    """The agent `value` names by its id or its name (as ?agent= on the pages),
    or a CommandError that lists the agents there are."""
    from scoring.filters import agent_named
    from scoring.models import Agent

    agent = agent_named(value)
    if agent is None:
        known = ", ".join(Agent.objects.order_by("name").values_list("name", flat=True)[:20]) or "none yet"
        raise CommandError(f"no agent with id or name {value!r} (agents: {known}; add_agent creates one)")
    return agent


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
    """A memscore command: retry warnings only with -v 2 or more; Ctrl-C, SIGTERM
    and SIGHUP a one-line error (exit status 128 + the signal's number: 130,
    143, 129) rather than a traceback or a death that leaves a run running."""

    def execute(self, *args, **options):
        with quiet_retries(options.get("verbosity", 1)), stopping_as_ctrl_c():
            try:
                return super().execute(*args, **options)
            except KeyboardInterrupt as e:
                stop = interruption(e)
                raise CommandError(stop.headline, returncode=stop.returncode) from None

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
