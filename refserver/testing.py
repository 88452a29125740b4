"""Run a real refserver process for tests (memscore's and its own).

    with run_refserver(tmp_path / "state") as server:
        httpx.post(f"{server.base_url}/score", json={...})
        server.control(fail_nth=[2], fail_mode="http500")
        assert server.stats()["calls"]["score"] == 2

Uses only the standard library, so any test environment can import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


@dataclass
class RefServerHandle:
    port: int
    proc: subprocess.Popen
    host: str = "127.0.0.1"

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def control(self, **faults: Any) -> dict[str, Any]:
        """Replace the fault settings (fields not given return to their defaults, so
        ``control()`` clears every fault) and reset the per-endpoint call counters."""
        return _request("POST", f"{self.base_url}/_control/faults", faults)

    def stats(self) -> dict[str, Any]:
        return _request("GET", f"{self.base_url}/_control/stats")


def _request(method: str, url: str, body: Any = None, timeout: float = 10.0) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {url} -> {e.code}: {e.read().decode(errors='replace')}") from None


@contextlib.contextmanager
def run_refserver(
    state_dir: str | os.PathLike[str], *extra_args: str, env: Mapping[str, str] | None = None
) -> Iterator[RefServerHandle]:
    """Start ``python -m refserver`` on a free port with --enable-control, wait until
    /health answers, and stop it (terminate, then kill) on exit. ``env`` entries are
    added to this process's environment."""
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, **(env or {})}
    # The package must be importable from the child wherever the caller runs from.
    repo_root = str(Path(__file__).resolve().parent.parent)
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, child_env.get("PYTHONPATH")) if p)
    # Port 0: the server binds a port the OS knows is free and reports it, so no other
    # process can take the port between choosing it and binding it.
    args = [sys.executable, "-m", "refserver", "--host", "127.0.0.1", "--port", "0"]
    args += ["--state-dir", str(state_dir), *extra_args, "--enable-control"]
    proc = subprocess.Popen(args, env=child_env, stdout=subprocess.PIPE, text=True)
    try:
        port = _wait_listening(proc)
        _wait_healthy(proc, port)
        yield RefServerHandle(port=port, proc=proc)
    finally:
        _stop(proc)


def _wait_listening(proc: subprocess.Popen) -> int:
    """Read the 'refserver listening on http://HOST:PORT' line; pass later output on."""
    lines: queue.Queue[str] = queue.Queue()
    announced = threading.Event()

    def pump() -> None:
        for line in proc.stdout:
            if announced.is_set():
                sys.stdout.write(line)
            else:
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        match = re.match(r"refserver listening on http://[^\s]+:(\d+)", line)
        if match:
            announced.set()
            return int(match.group(1))
        sys.stdout.write(line)
    raise RuntimeError(f"refserver did not start (exit code {proc.poll()}); see its stderr above")


def _wait_healthy(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1.0) as response:
                if response.status == 200:
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"refserver on port {port} did not answer /health (exit code {proc.poll()})")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
