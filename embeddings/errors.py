"""Errors raised while building or loading an embedding model."""

# `qa.errors` imports nothing, so the model layer can share the service's one error root without a
# cycle; every surface (CLI, HTTP, MCP) then catches `QAError` alone.
from qa.errors import QAError


class ModelError(QAError):
    """A model file or directory is missing, incomplete or corrupt; the message names the fix."""
