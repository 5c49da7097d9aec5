"""Pressroom's service runtime: settings, the broker and publisher, provisioning, the delivery policy,
structured logging, and the LLM and object-store clients. Services share this; they never import each other.
"""
