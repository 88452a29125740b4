"""The scoring engine: token sequences, run planning, claimed execution, results.

`start_run(snapshot, mode, params=..., by=...)` plans a run and enqueues it;
`run_inline(run)` does a run's work in this process (tests, the CLI).
"""
