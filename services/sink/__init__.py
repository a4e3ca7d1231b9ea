"""The Redis sink: results and camera thumbnails from Kafka into the Redis serving layer."""
