"""The FastAPI decision service (issue 5): it imports the engine, never training."""
