"""Pressroom writer stage: the blog post, streamed token by token."""
