"""Pressroom gateway: FastAPI WebSocket fan-out of stage events."""
