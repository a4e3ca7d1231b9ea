"""Prometheus metrics and the health/metrics HTTP endpoint every service exposes."""
