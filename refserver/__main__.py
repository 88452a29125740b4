"""``python -m refserver --port 8765 --state-dir DIR``: see README.md for the flags."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from .config import ServerConfig, parse_config


async def serve(config: ServerConfig) -> None:
    # Not a cycle: aiohttp and the model (numpy, the corpus) load only once the flags
    # have been read, so that `--help` and a bad flag answer at once.
    from aiohttp import web

    from .app import build_app
    from .server import RefServer

    server = RefServer(config)
    runner = web.AppRunner(
        build_app(server),
        handler_cancellation=True,  # a client that gives up frees its capacity slot
        shutdown_timeout=1.0,  # requests held by a 'hang' fault must not delay a stop
        access_log=logging.getLogger("aiohttp.access") if config.access_log else None,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"refserver listening on http://{shown}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        server.executor.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> None:
    config = parse_config(argv)  # before the heavy imports, so a bad flag fails fast
    from .engines import EngineUnavailable  # heavy (numpy): imported after the flags, as in serve()
    from .training import StateError

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="refserver %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(config))
    except (StateError, EngineUnavailable, OSError) as e:
        print(f"refserver: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
