"""Ably's wire protocol, sans-I/O: types, codecs, validation. Shared by the relay and client/."""
