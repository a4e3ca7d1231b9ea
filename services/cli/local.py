"""``streamsense local up | down | status``."""

from __future__ import annotations

import typer
from rich.text import Text

from streamsense.services.cli.entry import EXIT_USAGE, fail, settings_from
from streamsense.services.cli.entry import console as entry_console
from streamsense.services.exceptions import ServiceError
from streamsense.services.local.stack import LocalStack
from streamsense.services.settings import StreamsenseSettings

app = typer.Typer(help="Run a real Kafka (KRaft) and Redis on loopback, without Docker.")
console = entry_console()


def _stack() -> LocalStack:
    s = settings_from(StreamsenseSettings)
    return LocalStack(s.home / "local", s.home)


@app.command()
def up(
    kafka_port: int = typer.Option(None, help="default 9092, or a free port if taken"),
    redis_port: int = typer.Option(None, help="default 6379, or a free port if taken"),
    brokers: int = typer.Option(
        1, "--brokers", min=1, max=3, help="3: a three-node KRaft cluster (replication 3)"
    ),
) -> None:
    """Start Kafka and Redis (a no-op when they already run) and print how to reach them."""
    if brokers == 2:  # noqa: PLR2004 - two voters cannot lose one: no better than one
        msg = "--brokers: 1, or 3 (a quorum of two voters cannot lose a node)"
        raise fail(msg, EXIT_USAGE)
    try:
        with console.status("starting Kafka and Redis (first run fetches the Kafka jars)..."):
            st = _stack().up(kafka_port, redis_port, brokers=brokers)
    except ServiceError as exc:
        msg = f"local stack failed: {exc}"
        raise fail(msg) from exc
    pids = ", ".join(str(p) for p in [st.kafka_pid, *(n["pid"] for n in st.more_kafka)])
    console.print(f"Kafka {st.kafka_version}: {st.bootstrap} (pid {pids})")
    console.print(f"Redis: {st.redis_url} (pid {st.redis_pid})")
    console.print(
        f"export STREAMSENSE_KAFKA_BOOTSTRAP={st.bootstrap} STREAMSENSE_REDIS_URL={st.redis_url}"
    )


@app.command()
def down() -> None:
    """Stop exactly the processes `up` started."""
    stopped = _stack().down()
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status() -> None:
    """Print the bootstrap address and Redis URL; exit 0 only when both answer."""
    st, kafka_ok, redis_ok = _stack().status()
    if st is None:
        console.print("local stack: not started (streamsense local up)")
        raise typer.Exit(1)

    def mark(ok: bool) -> Text:
        return Text("answers", style="green") if ok else Text("does not answer", style="red")

    console.print(Text.assemble(f"kafka  {st.bootstrap}  ", mark(kafka_ok),
                                f"  (Kafka {st.kafka_version})"))  # fmt: skip
    console.print(Text.assemble(f"redis  {st.redis_url}  ", mark(redis_ok)))
    if not (kafka_ok and redis_ok):
        raise typer.Exit(1)
