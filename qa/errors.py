"""Domain errors of the search service.

Every message is written for the person using the service (CLI line, HTTP error body), so the
layers that catch these show `str(exc)` unchanged instead of a traceback. `QAError` is the one
root: the model's errors (`embeddings.errors.ModelError`) derive from it too, so catching `QAError`
catches every error a user can act on. This module imports nothing, so `embeddings` can use it.
"""


class QAError(Exception):
    """Base class; the message is shown to users as-is."""


class DocumentError(QAError):
    """A file cannot be read as a document (binary, not UTF-8, malformed JSONL, unsupported type)."""


class UnsupportedTypeError(DocumentError):
    """A file type that cannot be read as one document (by its suffix); the HTTP API answers 415."""


class QuestionError(QAError):
    """A question is empty or too long."""


class IndexStateError(QAError):
    """The index is missing, corrupt, or was built with another model."""


class StorageError(IndexStateError):
    """The disk refused a read or write of the index (full, read-only, I/O error); what was
    published before is intact. `disk_full` picks HTTP 507 over 503."""

    def __init__(self, message: str, *, disk_full: bool = False) -> None:
        super().__init__(message)
        self.disk_full = disk_full


class NotFoundError(QAError):
    """A document id that is not in the index."""


class ConfigurationError(QAError):
    """A setting (an environment variable) has a value that cannot be used."""
