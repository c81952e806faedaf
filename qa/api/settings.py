"""Settings of the HTTP service, read once when the app is created (declared in qa/settings.py)."""

from __future__ import annotations

from dataclasses import dataclass

from qa import settings
from qa.documents import MAX_DOCUMENT_BYTES
from qa.settings import DEFAULT_MAX_API_DOCUMENT_BYTES, RateLimit

__all__ = [
    "DEFAULT_MAX_API_DOCUMENT_BYTES",
    "MAX_JSON_BYTES",
    "MAX_MULTIPART_BYTES",
    "MAX_UPLOAD_BYTES",
    "ApiSettings",
    "RateLimit",
]

# Every JSON body (questions, documents sent as text) is refused above this size with 413.
MAX_JSON_BYTES = 1024 * 1024
# No upload is ever read past what `qa ingest` would read from a file; the multipart framing
# (boundary, part headers) comes on top of the file itself.
MAX_UPLOAD_BYTES = MAX_DOCUMENT_BYTES
MAX_MULTIPART_BYTES = MAX_UPLOAD_BYTES + 64 * 1024


@dataclass(frozen=True)
class ApiSettings:
    api_token: str | None = None  # None: write routes are disabled
    cors_origins: tuple[str, ...] = ()  # empty: no CORS headers at all
    rate_limit: RateLimit | None = None  # None: no rate limiting
    max_document_bytes: int = DEFAULT_MAX_API_DOCUMENT_BYTES  # a larger document: 413, use qa ingest

    @classmethod
    def from_env(cls) -> ApiSettings:
        """QA_API_TOKEN (a secret for write routes), QA_CORS_ORIGINS (comma-separated origins),
        QA_RATE_LIMIT (e.g. 60/minute per client address) and QA_MAX_API_DOCUMENT_BYTES."""
        return cls(
            api_token=settings.API_TOKEN.get(),
            cors_origins=settings.CORS_ORIGINS.get(),
            rate_limit=settings.RATE_LIMIT.get(),
            max_document_bytes=settings.MAX_API_DOCUMENT_BYTES.get(),
        )
