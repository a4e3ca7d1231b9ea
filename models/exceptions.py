"""Errors of the models layer; all derive from
:class:`streamsense.schemas.exceptions.StreamsenseError`."""

from __future__ import annotations

from streamsense.schemas.exceptions import StreamsenseError


class ModelError(StreamsenseError):
    """Base class of every error raised by ``models``."""


class BadInputError(ModelError):
    """An input cannot be fed to a model (wrong dtype, shape, empty batch or empty image).

    The one error an adapter raises for bad input; workers route the message to its DLQ.
    """


class BadImageError(BadInputError):
    """Image bytes that are unsafe or impossible to decode (not the declared format, truncated,
    over a size or pixel budget, corrupt); raised by :mod:`streamsense.models.decoding`."""


class ModelOutputError(BadInputError):
    """The model's output for an input is unusable (NaN, inf, or not a probability
    distribution where one is expected). A BadInputError, so a worker dead-letters that input
    with the reason and serves the rest of the batch; at load time the probe's output is
    checked the same way and a model that fails it is refused (SignatureError)."""


class ModelIntegrityError(ModelError):
    """An artifact does not match its card (sha256 mismatch) or cannot be read (corrupt)."""


class SignatureError(ModelError):
    """A model's inputs or outputs are not what its task needs (e.g. a detector without
    ``detection_boxes``)."""


class ModelNotFoundError(ModelError):
    """The store has no such model name, version or champion."""


class FetchError(ModelError):
    """Building the default zoo failed: a registry could not be reached or a package did not
    contain what was expected."""


class UnsafeModelError(ModelError):
    """A SavedModel's graph holds ops that touch files, processes, Python or the network
    (:mod:`streamsense.models.safety`) and its card does not allow them."""
