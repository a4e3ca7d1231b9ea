"""A BatchLoop in its own process, for the kill -9 and SIGTERM tests.

usage: python -m tests.integration.loop_child BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP DELAY_S
Prints "ready" once partitions are assigned, and "processed N" after each batch.
"""

from __future__ import annotations

import sys

from confluent_kafka import Message

from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.handler import Outcome
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.runner import stop_on_signals
from streamsense.services.settings import StreamsenseSettings
from tests.kafka_helpers import EchoHandler


class _Reporting(EchoHandler):
    def process(self, prepared: list[Message]) -> list[Outcome]:
        out = super().process(prepared)
        print(f"processed {len(prepared)}", flush=True)
        return out


def main() -> None:
    bootstrap, in_topic, out_topic, group, delay = sys.argv[1:6]
    settings = StreamsenseSettings(kafka_bootstrap=bootstrap, service_name="child")
    loop = BatchLoop(
        settings,
        # auto-commit rarely, so a kill -9 loses uncommitted progress for sure
        LoopConfig([in_topic], group, max_batch=5, max_wait_ms=50, commit_interval_ms=60_000),
        _Reporting(out_topic, float(delay)),  # the loop makes its producer (STREAMSENSE_DELIVERY)
    )
    print("ready", flush=True)
    with stop_on_signals(loop.stop):
        loop.run()
    print(f"stopped {loop.processed}", flush=True)


if __name__ == "__main__":
    main()
