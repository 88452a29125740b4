"""`make demo` (issue 12, defect 12): a second run reports the demo's own
snapshot, the runs are queued after the URL is printed, and no command warns
that the broker URL has no hostname."""

import importlib.util
import io
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from django.core.management import call_command

from scoring.models import Agent, Snapshot

ROOT = Path(__file__).resolve().parent.parent


def load_demo_script():
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_second_seed_reports_the_demos_snapshot_not_the_latest(agent, ref):
    agent.delete()  # seed_demo creates its own "poc"
    call_command("seed_demo", "--base-url", ref.base_url, "--password", "pw-demo-123", stdout=io.StringIO())
    demo = Snapshot.objects.get()
    # The agent sent a newer snapshot since.
    newer = Snapshot.objects.create(agent=Agent.objects.get(name="poc"), taken_at=demo.taken_at + timedelta(days=3),
                                    source=Snapshot.Source.API)

    out = io.StringIO()
    call_command("seed_demo", "--base-url", ref.base_url, "--password", "pw-demo-123", stdout=out)

    assert f"snapshot {demo.pk} already there" in out.getvalue()
    assert f"snapshot {newer.pk} " not in out.getvalue()
    assert Snapshot.objects.count() == 2
    assert load_demo_script().demo_snapshot_id(out.getvalue()) == str(demo.pk)


def test_the_demo_queues_its_runs_after_printing_the_url():
    source = (ROOT / "scripts" / "demo.py").read_text()
    main = source[source.index("def main():"):source.index("def demo_snapshot_id")]
    assert main.index("memscore is running") < main.index('"score", snapshot')
    assert "--latency-per-token-us" in main  # and the server is slow enough to watch them


def test_a_command_prints_no_kombu_warning(tmp_path):
    # A fresh process without REDIS_URL: the filesystem broker, as `make demo` uses it.
    env = {"MEMSCORE_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'memscore_site.settings'); "
            "django.setup(); from memscore_site.celery import app; "
            "c = app.connection_for_write(); c.as_uri(); c._info(); c.release()")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "No hostname was supplied" not in done.stderr + done.stdout
