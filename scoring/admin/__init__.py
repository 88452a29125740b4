"""The admin panel: every model, with state changes only through the model verbs.

Results written by the engine (calls, cells, scores) and decisions written by
reviewers are read-only here: editing them by hand would break what the
constraints guarantee. Approve/reject, retry and cancel are admin actions that
call the same verbs as the pages (`decide`, `retry`, `cancel`), so they are
checked, logged and settled the same way. Text from models is never marked
safe: the admin escapes it.

One module per part of the product; importing them registers their ModelAdmins.
"""

from scoring.admin import accounts, activity, agents, candidates, runs, train_jobs  # noqa: F401  (registers them)
