"""Root of the streamsense exception tree and the contract errors.

Every package has its own ``exceptions.py`` whose errors derive from :class:`StreamsenseError`,
so a caller can catch one base class. The contracts live at the bottom of the dependency graph
(``schemas`` <- ``models`` <- ``services``), so the root error lives here too.
"""

from __future__ import annotations


class StreamsenseError(Exception):
    """Base class of every error raised by streamsense."""


class SchemaError(StreamsenseError):
    """A message does not match its contract (wrong schema, version, field or encoding).

    This is the one exception type every decode failure becomes; the poison-message policy
    routes it to the dead-letter topic with ``str(exc)`` as the reason.
    """


class UnknownSchemaError(SchemaError):
    """The message names a schema/version pair that no model is registered for."""
