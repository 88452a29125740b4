"""Snapshots in: validation of the format in docs/snapshot-format.md, tokenizing, and the import.

The API, the upload form and the `import_snapshot` command all go through
`parse_snapshot_json` (bytes → data), `validate_snapshot` (data → cleaned) and
`import_or_find` (cleaned → rows, or the stored snapshot with the same
content), so they accept and reject exactly the same
input with the same messages. Each stage is a module: parse, validate, store.
"""

from scoring.importing.parse import SnapshotError, parse_snapshot_json
from scoring.importing.store import (
    TokenizeError,
    import_or_find,
    import_snapshot,
    restore_memory_texts,
    tokenize_missing,
)
from scoring.importing.validate import MAX_ERRORS, validate_snapshot

__all__ = [
    "MAX_ERRORS",
    "SnapshotError",
    "TokenizeError",
    "import_or_find",
    "import_snapshot",
    "parse_snapshot_json",
    "restore_memory_texts",
    "tokenize_missing",
    "validate_snapshot",
]
