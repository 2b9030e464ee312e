"""Who may write what on NATS: the role table and the server config rendered from it."""
