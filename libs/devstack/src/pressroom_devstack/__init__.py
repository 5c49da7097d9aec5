"""Pressroom's embedded stack (NATS, PostgreSQL, S3, local model, services), its pytest fixtures and the pressroom command."""
