"""Deterministic sample data for demos and tests, built only from what packages ship:
a video composed from scikit-image's bundled photos and a log file whose lines carry sentiment."""
