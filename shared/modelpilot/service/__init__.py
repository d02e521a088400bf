"""The service layer: command handlers, queries and the message bus."""
