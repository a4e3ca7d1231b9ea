"""The one Kafka I/O core: producer, batch consume/commit loop, dead-letter routing, topics."""
