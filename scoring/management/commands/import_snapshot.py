"""`manage.py import_snapshot FILE --agent AGENT`: the command line's way in for a
snapshot, through the same validation as the API and the upload page."""

import sys

from django.core.management.base import CommandError

from scoring.importing import SnapshotError, TokenizeError, import_or_find, parse_snapshot_json
from scoring.models import Snapshot

from . import _cli


class Command(_cli.Command):
    help = (
        "Import a snapshot JSON file (- for stdin) into an agent; prints the snapshot id "
        "(the stored one's when the agent already sent this content)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to the snapshot JSON, or - to read stdin")
        parser.add_argument("--agent", required=True, help="The agent it belongs to, by id or name")

    def handle(self, *args, file, agent, **options):
        target = _cli.agent_arg(agent)
        try:
            if file == "-":
                raw = getattr(sys.stdin, "buffer", sys.stdin).read()
            else:
                with open(file, "rb") as f:
                    raw = f.read()
        except OSError as e:
            raise CommandError(f"cannot read {file}: {e.strerror}") from None
        try:
            snapshot, created = import_or_find(
                target, parse_snapshot_json(raw), source=Snapshot.Source.CLI, actor_name="command line"
            )
        except SnapshotError as e:
            listing = "\n".join(f"  {message}" for message in e.errors)
            raise CommandError(f"invalid snapshot, nothing imported:\n{listing}") from None
        except TokenizeError as e:
            raise CommandError(f"nothing imported: {e}") from None
        if not created:
            # stdout stays the id alone: scripts read it either way.
            self.stderr.write(f"already imported as snapshot {snapshot.pk}: nothing new was stored")
        self.stdout.write(str(snapshot.pk))
