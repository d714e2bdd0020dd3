"""channel-relay: a self-hosted relay speaking Ably's realtime and REST channel protocol."""

__version__ = "0.1.0"
