"""How fast the heatmap page is drawn and hoverable, at 50×200, 200×1,000 and 500×2,000 cells.

    .venv/bin/python bench/heatmap_speed.py [--sizes 50x200,500x2000] [--database-url URL]

Builds throwaway finished runs (random signed deltas, ~1% failed cells) in a
temporary database (SQLite in a temporary folder unless --database-url names
an empty PostgreSQL database), serves the app on a free port from a thread,
logs in with headless Chromium (/usr/bin/chromium, never a downloaded one) and
measures, per size:

- the server time of the heatmap_data request, cold (payload built) and warm
  (from the server's cache; the browser's cache is disabled);
- the time from navigation to a drawn, hoverable heatmap: heatmap.js sets a
  `heatmap-ready` performance mark once the canvas is drawn and its listeners
  are attached, and the mark's time is relative to the navigation's start;
- that hovering a cell then shows its tooltip.

Exits 1 when the largest size misses the target (1.5 s with the payload cached).
"""

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright
from scratch import setup_django

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

TARGET_SECONDS = 1.5
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
PASSWORD = "bench-password-123"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50x200,200x1000,500x2000",
                        help="memories x responses, comma separated")
    parser.add_argument("--database-url", default=None,
                        help="an empty database to use (default: SQLite in a temporary folder)")
    parser.add_argument("--failed", type=float, default=0.01, help="fraction of failed cells")
    return parser.parse_args()


def build_runs(sizes, failed_fraction):
    # Imported here, not at the top: Django is configured by setup_django() in main().
    from django.contrib.auth.models import Group, User

    from scoring.models import Agent
    from tests.matrix_data import FAILED, matrix_run

    user = User.objects.create_user("bench", password=PASSWORD)
    user.groups.add(Group.objects.get(name="viewer"))
    agent = Agent.objects.create(name="bench", base_url="http://127.0.0.1:9/v1", model="bench")
    rng = random.Random(20261124)
    runs = {}
    for n_mem, n_resp in sizes:
        started = time.perf_counter()
        # Mostly near zero, some important, some harmful: like real matrices.
        deltas = [
            [FAILED if rng.random() < failed_fraction else round(rng.expovariate(4) - 0.05, 4)
             for _ in range(n_resp)]
            for _ in range(n_mem)
        ]
        keys = [f"bench/{n_mem}x{n_resp}/mem-{i:04d}" for i in range(n_mem)]
        responses = [f"Response {j}: " + "lorem ipsum dolor sit amet " * 6 for j in range(n_resp)]
        runs[(n_mem, n_resp)] = matrix_run(agent, deltas, keys=keys, responses=responses)
        print(f"  built {n_mem}×{n_resp} ({n_mem * n_resp:,} cells) in {time.perf_counter() - started:.1f}s",
              flush=True)
    return runs


class Timed:
    """WSGI wrapper that records how long each heatmap.json request took to serve."""

    def __init__(self, app):
        self.app = app
        self.times = []

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        body = b"".join(self.app(environ, start_response))
        if environ["PATH_INFO"].endswith("/heatmap.json"):
            self.times.append((environ["PATH_INFO"], time.perf_counter() - started, len(body)))
        return [body]


def serve():
    # Imported here, not at the top: Django is configured by setup_django() in main().
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    app = Timed(StaticFilesHandler(get_wsgi_application()))
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, app, f"http://127.0.0.1:{server.server_address[1]}"


def measure(page, base_url, run, app):
    # Imported here, not at the top: Django is configured by setup_django() in main().
    from django.urls import reverse

    url = base_url + reverse("heatmap", args=[run.pk])
    page.goto(url)
    page.wait_for_function("() => document.body.dataset.heatmapReady === '1'", timeout=60_000)
    marks = page.evaluate(
        "Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, m.startTime]))"
    )
    ready_ms = marks["heatmap-ready"]
    nav = page.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
    data = page.evaluate(
        "performance.getEntriesByType('resource').filter(r => r.name.endsWith('heatmap.json'))[0].toJSON()"
    )
    # Hoverable: a real mouse move over a cell fills the tooltip.
    box = page.locator("#heatmap-canvas").bounding_box()
    hover_start = time.perf_counter()
    page.mouse.move(box["x"] + 3, box["y"] + 3)
    page.locator("#heatmap-tooltip").wait_for(state="visible", timeout=5_000)
    hover_ms = (time.perf_counter() - hover_start) * 1000
    key = page.locator("#heatmap-tooltip .t-key").inner_text()
    assert key.startswith("bench/"), key
    page.mouse.move(0, 0)
    _, server_s, size = app.times[-1]
    return {
        "ready_ms": ready_ms, "hover_ms": hover_ms, "server_ms": server_s * 1000, "bytes": size,
        # Where the time goes, in the browser's clock from navigation start.
        "steps": {
            "html": nav["responseEnd"],
            "fetch start": data["requestStart"],
            "json received": data["responseEnd"],
            "parsed": marks["heatmap-parsed"],
            "decoded": marks["heatmap-decoded"],
            "drawn": ready_ms,
        },
    }


def main():
    """Set up, then time each size in turn: one straight story, easier read whole than split."""
    args = parse_args()
    sizes = [tuple(int(n) for n in s.lower().split("x")) for s in args.sizes.split(",")]
    if not os.path.exists(CHROMIUM):
        sys.exit(f"Chromium not found at {CHROMIUM} (apt-get install chromium); this bench never downloads one.")
    with tempfile.TemporaryDirectory(prefix="memscore-bench-") as tmp:
        tmp = Path(tmp)
        print(f"Building runs in a temporary database ({args.database_url or 'SQLite in ' + str(tmp)})…")
        # Playwright's sync API keeps an event loop in this thread; ORM calls here stay synchronous.
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        setup_django(tmp, args.database_url)
        runs = build_runs(sizes, args.failed)
        server, app, base_url = serve()

        results = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            # Every navigation asks the server again: "warm" means the server's
            # cache, not the browser's.
            page.context.new_cdp_session(page).send("Network.setCacheDisabled", {"cacheDisabled": True})
            page.goto(base_url + "/login/")
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/login/" not in url)
            for size in sizes:
                run = runs[size]
                cold = measure(page, base_url, run, app)
                warm = measure(page, base_url, run, app)
                results.append((size, cold, warm))
            browser.close()
        server.shutdown()

    print()
    header = ("cells", "JSON sent (gzip)", "JSON server, first", "JSON server, cached",
              "page ready, first view", "page ready", "hover", f"target < {TARGET_SECONDS} s")
    rows = []
    ok = True
    largest = max(sizes, key=lambda s: s[0] * s[1])
    for (n_mem, n_resp), cold, warm in results:
        met = warm["ready_ms"] < TARGET_SECONDS * 1000
        if (n_mem, n_resp) == largest:
            ok = ok and met
        rows.append((
            f"{n_mem} × {n_resp:,}", f"{cold['bytes'] / 1e6:.2f} MB",
            f"{cold['server_ms']:.0f} ms", f"{warm['server_ms']:.0f} ms",
            f"{cold['ready_ms']:.0f} ms", f"{warm['ready_ms']:.0f} ms",
            f"{warm['hover_ms']:.0f} ms", "met" if met else "MISSED",
        ))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    print("\nWhere the time goes (ms from navigation start, server cache warm):")
    for (n_mem, n_resp), _, warm in results:
        steps = ", ".join(f"{name} {ms:.0f}" for name, ms in warm["steps"].items())
        print(f"  {n_mem} × {n_resp:,}: {steps}")
    print(f"\n'page ready' = navigation start → canvas drawn with hover/click listeners attached "
          f"(performance mark 'heatmap-ready'), with the run's payload in the server's cache; "
          f"target < {TARGET_SECONDS} s at the largest size.\n'first view' is the first visit after "
          f"the run finished, when the server reads every cell and packs the payload (once per run and cache).")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
