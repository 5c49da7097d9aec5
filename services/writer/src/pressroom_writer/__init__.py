"""Pressroom writer stage: the blog post, outlined, then written section by section and streamed as it
is written (pieces coalesced, at most every 50 ms)."""
