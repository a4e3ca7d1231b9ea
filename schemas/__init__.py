"""Message contracts for every streamsense topic (pydantic v2) and their JSON Schema export."""
