"""Pressroom's service runtime: settings, broker, provisioning, ack policy, logging, LLM and object-store clients."""
