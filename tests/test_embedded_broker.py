"""The embedded broker (no REDIS_URL) never shows a worker a message file
before it is written whole: kombu's filesystem transport created the file
under its final name and wrote it afterwards, and a worker that listed the
folder in between read b"" and died of JSONDecodeError (make demo stopped)."""

import os
import queue

import pytest
from kombu import Connection
from kombu.transport import filesystem

from memscore_site import broker


def channel_on(folder, transport):
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False}
    return Connection("filesystem://localhost/", transport=transport, transport_options=options).channel()


@pytest.mark.parametrize("transport, whole", [(broker.Transport, True), (filesystem.Transport, False)])
def test_a_worker_never_reads_a_message_being_written(tmp_path, monkeypatch, transport, whole):
    channel = channel_on(tmp_path, transport)
    seen = []

    def write_then_look(text):
        # The moment kombu's file is open and empty: what would a worker get now?
        try:
            seen.append(channel._get("q"))
        except queue.Empty:
            seen.append("nothing yet")
        except ValueError as e:  # json's JSONDecodeError: the failure the worker died of
            seen.append(e)
        return text.encode()

    for module in (broker, filesystem):
        monkeypatch.setattr(module, "str_to_bytes", write_then_look)
    channel._put("q", {"body": "hello"})
    monkeypatch.undo()
    if whole:
        assert seen == ["nothing yet"]
        assert channel._get("q") == {"body": "hello"}
        assert os.listdir(tmp_path) == []
    else:  # kombu's own: the empty file is taken, and read as bad JSON
        assert isinstance(seen[0], ValueError)


def test_the_site_uses_it_without_redis(settings):
    from memscore_site.celery import app

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        assert settings.CELERY_BROKER_URL.startswith(f"{broker.SCHEME}://")
        assert isinstance(app.connection_for_write().transport, broker.Transport)
