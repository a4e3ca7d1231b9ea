"""Benchmarks behind ``streamsense bench ...``; each writes a JSON result."""
