"""Settings of the HTTP service, read from the environment once when the app is created."""

from __future__ import annotations

import os
from dataclasses import dataclass

from qa.documents import MAX_DOCUMENT_BYTES

# Every JSON body (questions, documents sent as text) is refused above this size with 413.
MAX_JSON_BYTES = 1024 * 1024
# Uploaded files may be as large as a file `qa ingest` reads; the multipart framing (boundary,
# part headers) comes on top of the file itself.
MAX_UPLOAD_BYTES = MAX_DOCUMENT_BYTES
MAX_MULTIPART_BYTES = MAX_UPLOAD_BYTES + 64 * 1024


@dataclass(frozen=True)
class ApiSettings:
    api_token: str | None = None  # None: write routes are disabled
    cors_origins: tuple[str, ...] = ()  # empty: no CORS headers at all

    @classmethod
    def from_env(cls) -> ApiSettings:
        """QA_API_TOKEN (a secret for write routes) and QA_CORS_ORIGINS (comma-separated origins)."""
        token = os.environ.get("QA_API_TOKEN", "").strip() or None
        origins = tuple(o.strip() for o in os.environ.get("QA_CORS_ORIGINS", "").split(",") if o.strip())
        return cls(api_token=token, cors_origins=origins)
