"""Storage: the event store and the decision log (SQLite, the embedded default), read by serving and by
training's export commands."""
