"""Errors raised while building or loading an embedding model."""


class ModelError(RuntimeError):
    """A model file or directory is missing, incomplete or corrupt; the message names the fix."""
