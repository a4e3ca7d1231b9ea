"""The gateway: REST and WebSocket access to the Redis serving layer, and the dashboard."""
