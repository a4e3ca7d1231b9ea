"""Windowed analytics and alerts over the result topics, as a Faust app (docs/analytics.md).

``windows``, ``observe``, ``rules`` and ``processor`` are pure and testable with a dict;
``app`` wires them into Faust agents, tables and timers; ``service`` runs the worker.
"""
