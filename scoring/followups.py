"""What the engine and the services leave for workers to do, as plain data.

Only `scoring.tasks` knows Celery. The engine and the services write rows and
return a Followups saying what should be sent to the workers; the entry point
that called them (a view, a task, a command) hands it to
`scoring.tasks.enqueue.enqueue_on_commit`. Whatever is lost on the way (the
broker down, a worker killed) is found again by a beat sweep from the rows
alone (resume_stalled_runs, resend_lost_alternates, dispatch_train_jobs), so
a Followups is a way to be quick, never the only record of the work.
"""

from dataclasses import dataclass, field


@dataclass
class Followups:
    # Runs whose tasks should be sent to the workers (one per shard).
    runs: list = field(default_factory=list)
    # Candidates whose alternate should be generated.
    alternates: list = field(default_factory=list)
    # Finished full runs whose heatmap payload should be packed into the cache.
    heatmaps: list = field(default_factory=list)
    # Train jobs a dispatcher should send now.
    train_jobs: list = field(default_factory=list)

    def add(self, other):
        """Add another Followups' work to this one; returns self."""
        if other is not None:
            self.runs += other.runs
            self.alternates += other.alternates
            self.heatmaps += other.heatmaps
            self.train_jobs += other.train_jobs
        return self

    def __bool__(self):
        return bool(self.runs or self.alternates or self.heatmaps or self.train_jobs)
