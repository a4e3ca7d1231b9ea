"""The ``streamsense`` command line: one typer app wiring services from small parts."""
