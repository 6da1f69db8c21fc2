"""The web layer: thin routers that translate HTTP to calls into the core."""
