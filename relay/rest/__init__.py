"""The REST API on the same port as the realtime endpoint."""
