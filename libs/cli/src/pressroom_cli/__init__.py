"""The `pressroom` command: a client of the Pressroom gateway (WebSocket `/v1/ws` and the REST API)."""
