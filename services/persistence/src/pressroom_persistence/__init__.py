"""Pressroom persistence: the system of record in PostgreSQL; decides completion."""
