"""The durable log: channel messages, apps and keys, behind one interface."""
