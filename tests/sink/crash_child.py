"""A sink that dies (``os._exit``) right after Redis took a batch holding a record it
dead-letters, before the dead letter is sent and the offsets committed: the crash window of
``test_dead_letters.py``. Settings come from the environment, as for ``streamsense sink``."""

from __future__ import annotations

import os

from streamsense.services.sink.camera_status import StatusItem
from streamsense.services.sink.handler import Prepared
from streamsense.services.sink.service import RedisSink
from streamsense.services.sink.settings import SinkSettings
from streamsense.services.sink.thumbnails import Thumbnail
from streamsense.services.sink.writer import ResultItem

#: What the sink writes; any other prepared item is a record it dead-letters.
WRITTEN = (ResultItem, Thumbnail, StatusItem, type(None))

EXIT_CODE = 3


def main() -> None:
    sink = RedisSink(SinkSettings())
    handler = sink.handler
    process = handler.process

    def crash_after(prepared: Prepared) -> list[object]:
        outcomes = process(prepared)
        if any(not isinstance(item, WRITTEN) for item in prepared):
            os._exit(EXIT_CODE)
        return outcomes  # type: ignore[return-value]

    handler.process = crash_after  # type: ignore[method-assign,assignment]
    sink.run()


if __name__ == "__main__":
    main()
