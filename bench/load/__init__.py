"""Load generators: a fast msgpack WebSocket client and the worker processes built on it."""
