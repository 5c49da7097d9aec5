"""Pressroom's shared contracts: events, subjects, the WebSocket protocol and the NATS topology.

Depends on pydantic only, so any service or outside system can import it.
"""
