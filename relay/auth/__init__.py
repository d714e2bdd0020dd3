"""Credentials to identities: keys, tokens, JWTs and capabilities (pure functions, no I/O)."""

__all__: list[str] = []
