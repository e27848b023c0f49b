"""One module per nbm sub-command: parse nothing, call the engine, print progress."""
