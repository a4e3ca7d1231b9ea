"""How every command starts, fails and exits.

- Settings come from the environment (``STREAMSENSE_*``), command-line options over it
  (:func:`settings_from`); an invalid value is one line that names what the user typed: the
  flag (``--max-batch``) or the variable (``STREAMSENSE_WORKER_MAX_BATCH``).
- Expected errors are one line on stderr (:func:`fail`): exit 2 for usage and configuration,
  1 for runtime failures. Tracebacks are for bugs, and for ``--log-level DEBUG``.
- A long-running service is built and served by :func:`run_service`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from streamsense.schemas.exceptions import StreamsenseError
from streamsense.services.exceptions import ConfigError
from streamsense.services.runner import Service, StartingHealth, serve, start_health
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)

EXIT_RUNTIME = 1
EXIT_USAGE = 2

S = TypeVar("S", bound=StreamsenseSettings)
#: settings field -> (the flag as the user types it, its value; None when not given)
Options = Mapping[str, tuple[str, Any]]


def console(stderr: bool = False) -> Console:
    """A console that prints text as it is: no markup (``[lab]`` in a path or a message stays
    ``[lab]``), no emoji codes (camera ``a:b:`` stays ``a:b:``), no highlighting; colour only
    where a style is given."""
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, soft_wrap=True)


_stderr = console(stderr=True)


def say_error(message: str) -> None:
    """``error: message`` on stderr; the message is shown exactly as written (no markup)."""
    _stderr.print(Text.assemble(("error: ", "bold red"), message))


def fail(message: str, code: int = EXIT_RUNTIME) -> typer.Exit:
    """Report ``message`` and return the exit to raise: ``raise fail(...) from exc``."""
    say_error(message)
    return typer.Exit(code)


def env_name(field: str) -> str:
    return f"STREAMSENSE_{field.upper()}"


def describe_invalid(exc: ValidationError, options: Options) -> str:
    """One line for a settings ValidationError, naming the flag or the variable."""
    parts = []
    for err in exc.errors(include_url=False):
        field = str(err["loc"][0]) if err["loc"] else ""
        flag, value = options.get(field, ("", None))
        if value is not None:
            where, got = flag, value
        else:
            where, got = env_name(field), err.get("input")
        parts.append(f"{where}={got!r}: {err['msg']}" if field else str(err["msg"]))
    return "; ".join(parts)


def settings_from(cls: type[S], options: Options | None = None, **fixed: Any) -> S:
    """``cls`` from the environment, with the given command-line options (and ``fixed``
    values) over it; exit 2 with one line when a value is invalid."""
    opts = options or {}
    given = {field: value for field, (_, value) in opts.items() if value is not None}
    try:
        return cls(**fixed, **given)
    except ValidationError as exc:
        raise fail(describe_invalid(exc, opts), EXIT_USAGE) from exc
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from exc


def run_service(settings: S, build: Callable[[S], Service]) -> NoReturn:
    """Bind the health port first (a port in use fails at once, not after loading a model),
    build the service (an expected failure is one line: exit 2 for configuration, 1 else),
    serve it until it ends or is stopped: exit 0, or 1 with the reason when it stopped on an
    error."""
    starting = StartingHealth()
    health = None
    try:
        health = start_health(settings, starting)
        # Building may wait on Kafka (topics, metadata) or load a model: say so, never be silent.
        log.info("%s starting (Kafka at %s)", settings.service_name, settings.kafka_bootstrap)
        service = build(settings)
    except StreamsenseError as exc:
        if health is not None:
            health.stop()
        log.debug("start-up failed", exc_info=True)
        raise fail(str(exc), EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_RUNTIME) from exc
    starting.service = service
    try:
        serve(settings, service, health)
    except StreamsenseError as exc:
        log.debug("stopped on an error", exc_info=True)
        msg = f"{settings.service_name} stopped: {exc}"
        raise fail(msg) from exc
    raise typer.Exit(0)
