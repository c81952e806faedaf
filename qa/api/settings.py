"""Settings of the HTTP service, read from the environment once when the app is created."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal, cast

from qa.documents import MAX_DOCUMENT_BYTES
from qa.errors import ConfigurationError

# Every JSON body (questions, documents sent as text) is refused above this size with 413.
MAX_JSON_BYTES = 1024 * 1024
# No upload is ever read past what `qa ingest` would read from a file; the multipart framing
# (boundary, part headers) comes on top of the file itself.
MAX_UPLOAD_BYTES = MAX_DOCUMENT_BYTES
MAX_MULTIPART_BYTES = MAX_UPLOAD_BYTES + 64 * 1024
# Documents sent over HTTP are encoded while the client waits: with the real model on two cores
# (about 15 passages a second), 2 MiB of Arabic news is already minutes of CPU. Larger files
# belong to `qa ingest`, which shows progress and ties up no HTTP request.
DEFAULT_MAX_API_DOCUMENT_BYTES = 2 * 1024 * 1024

Period = Literal["second", "minute", "hour", "day"]
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` per `period` from one client address."""

    requests: int
    period: Period

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """'60/minute' (also second, hour, day); ConfigurationError for anything else."""
        match = _RATE.match(text)
        if not match or int(match.group(1)) < 1:
            raise ConfigurationError(
                f"QA_RATE_LIMIT must look like 60/minute (a positive number per second, minute, hour "
                f"or day), not {text!r}"
            )
        return cls(int(match.group(1)), cast(Period, match.group(2).lower()))

    def __str__(self) -> str:
        return f"{self.requests}/{self.period}"


def _document_limit(raw: str) -> int:
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_DOCUMENT_BYTES:
        raise ConfigurationError(
            f"QA_MAX_API_DOCUMENT_BYTES must be a number of bytes from 1 to {MAX_DOCUMENT_BYTES}, not {raw!r}"
        )
    return limit


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
        token = os.environ.get("QA_API_TOKEN", "").strip() or None
        origins = tuple(o.strip() for o in os.environ.get("QA_CORS_ORIGINS", "").split(",") if o.strip())
        rate = os.environ.get("QA_RATE_LIMIT", "").strip()
        document_limit = os.environ.get("QA_MAX_API_DOCUMENT_BYTES", "").strip()
        return cls(
            api_token=token,
            cors_origins=origins,
            rate_limit=RateLimit.parse(rate) if rate else None,
            max_document_bytes=_document_limit(document_limit)
            if document_limit
            else DEFAULT_MAX_API_DOCUMENT_BYTES,
        )
