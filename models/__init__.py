"""Model runtime, task adapters, model store and default zoo (see docs/models.md).

Importing ``models`` does not import TensorFlow; the runtime loads it when a model is loaded.
"""
