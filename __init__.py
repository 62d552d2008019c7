"""sessionhub: keeps the conversations of AI chat apps behind one GraphQL endpoint."""

__version__ = "0.1.0"
