"""The local demo: every service as its own process on the sample data, with a live view."""
