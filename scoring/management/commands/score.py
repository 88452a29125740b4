"""The score command: start a run of any mode, follow it or run it here."""

from django import forms
from django.core.management.base import BaseCommand, CommandError

from scoring import modes

from ._runs import follow, get_snapshot, report, run_here, start


def mode_options():
    """{option name: (its modes, a field)}: every mode's parameters, as options."""
    options = {}
    for mode in modes.all():
        for name, field in mode.Params.base_fields.items():
            options.setdefault(name, ([], field))[0].append(mode.name)
    return options


def add_option(parser, name, field):
    flag = "--" + name.replace("_", "-")
    if isinstance(field.widget, forms.CheckboxInput):
        parser.add_argument(flag, action="store_true", default=None, help=field.help_text)
    else:
        kind = {forms.IntegerField: int, forms.FloatField: float}.get(type(field), str)
        parser.add_argument(flag, type=kind, help=field.help_text)


class Command(BaseCommand):
    help = (
        "Start a scoring run of a snapshot and print its id. With --wait, follow it "
        "until it ends; with --inline, do the work in this process (no worker needed). "
        "Exits non-zero when the run fails or only partly succeeds."
    )

    def add_arguments(self, parser):
        parser.add_argument("snapshot", type=int, help="Snapshot id")
        parser.add_argument("--mode", required=True, choices=modes.names())
        for name, (_, field) in mode_options().items():
            add_option(parser, name, field)
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--wait", action="store_true", help="follow the run until it ends")
        how.add_argument("--inline", action="store_true", help="run it in this process")

    def handle(self, *args, snapshot, mode, wait, inline, **options):
        params = {}
        for name, (used_by, _) in mode_options().items():
            if options.get(name) is None:
                continue
            if mode not in used_by:
                raise CommandError(f"--{name.replace('_', '-')} does not apply to --mode {mode}")
            params[name] = options[name]

        run = start(get_snapshot(snapshot), mode, params, send=not inline)
        self.stdout.write(str(run.pk))
        if not (wait or inline):
            return
        run = run_here(run, self.stdout.write) if inline else follow(run, self.stdout.write)
        report(run, self.stdout.write)
