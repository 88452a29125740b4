"""The embedded broker (no REDIS_URL): kombu's filesystem transport, with a
message file written whole before it appears in the queue folder.

kombu's own Channel._put opens the message file under its final name and
writes it afterwards; a worker listing the folder in between moves the empty
file away, reads b"", and dies of JSONDecodeError ("Unrecoverable error"),
and `make demo` stops with it (seen in a walkthrough; celery/kombu#1551).
Here the message is written under a name no queue reads, then renamed into
place, which is atomic within the folder.
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`: named as kombu names it (its _get reads
        the files in name order, the time first), written whole first."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Not "<...>.<queue>.msg": _get takes only names whose part after the first dot is that.
        writing = os.path.join(self.data_folder_out, f".writing-{name}")
        try:
            with open(writing, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(writing, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


# The broker URL's scheme (settings' CELERY_BROKER_URL without REDIS_URL): a
# URL, not a transport setting, so pointing the broker elsewhere needs one
# setting only (the URL).
SCHEME = "memscore-files"
TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
