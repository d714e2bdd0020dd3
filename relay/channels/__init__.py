"""In-memory channel state: subscribers, numbering, ordered fan-out after commit, history."""
