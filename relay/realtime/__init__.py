"""The realtime endpoint: one Connection per WebSocket, speaking Ably's ProtocolMessages."""
