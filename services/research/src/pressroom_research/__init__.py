"""Pressroom research stage: Tavily or a local BM25 knowledge base."""
