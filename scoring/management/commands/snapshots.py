"""`manage.py snapshots AGENT`: an agent's snapshots, latest first, with their
ids (what `score` takes; `score AGENT` takes the latest)."""

from django.db.models import Count

from scoring.models import Snapshot

from . import _cli

SHOWN = 20


class Command(_cli.Command):
    help = "List an agent's snapshots, latest first: id (what score takes), when taken, how imported, its runs."

    def add_arguments(self, parser):
        parser.add_argument("agent", help="the agent's name or id")
        parser.add_argument("--limit", type=int, default=SHOWN, help=f"snapshots to list at most [{SHOWN}]")

    def handle(self, *args, agent, limit, **options):
        agent = _cli.agent_arg(agent)
        snapshots = Snapshot.objects.filter(agent=agent)
        total = snapshots.count()
        if not total:
            self.err(f"{agent.name} has no snapshot yet (import_snapshot imports one)")
            return
        for snapshot in snapshots.order_by("-taken_at", "-id").annotate(run_count=Count("runs"))[:max(limit, 0)]:
            self.out(f"{snapshot.pk}\t{snapshot.taken_at:%Y-%m-%d %H:%M}\t{snapshot.get_source_display()}\t"
                     f"{_cli.plural(snapshot.run_count, 'run')}")
        if total > limit:
            self.err(f"{limit} of {total} snapshots shown (--limit)")
