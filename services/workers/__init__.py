"""Inference workers: frames/text from Kafka through a model adapter to ``results.*`` topics."""
