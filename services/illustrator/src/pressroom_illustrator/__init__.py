"""Pressroom illustrator stage: image prompt, image, object store."""
