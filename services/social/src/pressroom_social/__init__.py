"""Pressroom social stage: one post per platform within its limits."""
