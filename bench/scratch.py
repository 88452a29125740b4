"""A throwaway memscore installation for a benchmark: its own var/ folder and
database (SQLite there, or an empty scratch database given by URL), migrated.

Benchmarks run as `python bench/NAME.py`, so this module is importable as
`scratch` from beside them.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def add_database_url_argument(parser):
    """--database-url: an empty scratch database (BENCH_DATABASE_URL by default)."""
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"),
                        help="an empty scratch database (default: SQLite in a temporary folder)")


def setup_django(folder, database_url=None):
    """Point Django at `folder` and `database_url`, set it up and migrate."""
    folder = Path(folder)
    os.environ["MEMSCORE_VAR_DIR"] = str(folder)
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memscore_site.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
