"""Who is calling: bearer tokens (stepgraph API keys or session JWTs) -> Viewer."""
