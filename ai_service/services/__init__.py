"""Service-layer helpers shared by the API routes, the CLI and the batch workers."""
