"""streamsense services: producers, workers, learner, sinks, analytics, gateway, shared I/O."""
