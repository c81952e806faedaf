"""Document metadata (published date, language, URL, author, tags): one set of rules for every
way a document arrives (JSONL fields, HTML meta tags, PDF/DOCX properties, the API).

Dates are stored as ISO 8601 text that sorts as time does: a date stays "2019-01-31", a datetime
becomes UTC "2019-01-31T09:30:00Z". A date is the start of its day, so "2019-01-31" sorts before
every datetime of that day and string comparison is date comparison (the filters rely on it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from qa.errors import DocumentError

MAX_TAGS = 50
MAX_TAG_CHARS = 100
MAX_URL_CHARS = 2000
MAX_AUTHOR_CHARS = 300
# ISO 639-1 (two letters) or 639-3 (three), optionally with a region: "ar", "en", "pt-BR".
LANGUAGE_CODE_PATTERN = "^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$"
_LANGUAGE_CODE = re.compile(LANGUAGE_CODE_PATTERN)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Metadata:
    """What a document says about itself besides its text; every field optional."""

    published: str | None = None
    lang: str | None = None
    url: str | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()
    # The language was detected from the text, not given: a function of the text, so a content
    # hash leaves it out (a better detector later does not make every document "changed").
    lang_detected: bool = False

    def given(self) -> dict[str, object]:
        """`to_dict` without a detected language: what a content hash covers."""
        shown = self.to_dict()
        if self.lang_detected:
            shown.pop("lang", None)
        return shown

    def to_dict(self) -> dict[str, object]:
        """The fields that are set (tags as a list), for JSON and content hashes."""
        fields = {"published": self.published, "lang": self.lang, "url": self.url, "author": self.author}
        shown: dict[str, object] = {name: value for name, value in fields.items() if value}
        if self.tags:
            shown["tags"] = list(self.tags)
        return shown


def parse_published(value: object, *, field: str = "published") -> str | None:
    """ISO text of a date or datetime ("2019-01-31", "2019-01-31T09:30:00+03:00", a trailing
    "Z"), normalized as the module says; None for None or "". ValueError names the field."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return value.isoformat()
    elif isinstance(value, str):
        text = value.strip()
        if _DATE_ONLY.match(text):
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                raise ValueError(f"{field} {value!r} is not a real date") from None
        try:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ValueError(
                f"{field} {value!r} is not an ISO 8601 date or datetime (e.g. 2019-01-31 or "
                "2019-01-31T09:30:00+03:00)"
            ) from None
    else:
        raise ValueError(
            f"{field} must be a string (an ISO 8601 date or datetime), not {type(value).__name__}"
        )
    if moment.tzinfo is None:  # no zone given: read as UTC, the only choice that needs no guess
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 pushed past the calendar by its zone
        raise ValueError(f"{field} {value!r} is out of the range of dates") from None
    # Four-digit years (strftime's %Y gives "999"), so that the text sorts as time does.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


def parse_lang(value: object) -> str | None:
    """A language code, lower-cased ("ar", "en", "pt-br"); None for None or ""."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _LANGUAGE_CODE.match(value.strip()):
        raise ValueError(f"lang {value!r} is not a language code such as 'ar' or 'en'")
    return value.strip().lower().replace("_", "-")


# Between tags given as one string ("syria, un"), as keyword fields of files separate them.
TAG_SEPARATORS = re.compile(r"[,;،؛]")


def parse_tags(value: object) -> tuple[str, ...]:
    """Distinct tags in the order given, each stripped; a list of strings, or one string of
    tags separated by , ; ، or ؛ (as keyword fields of files give them)."""
    if value is None:
        return ()
    items = TAG_SEPARATORS.split(value) if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(tag, str) for tag in items):
        raise ValueError("tags must be a list of strings")
    tags = tuple(dict.fromkeys(tag.strip() for tag in items if tag.strip()))
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags, not {len(tags)}")
    for tag in tags:
        if len(tag) > MAX_TAG_CHARS or any(ord(char) < 0x20 for char in tag):
            raise ValueError(
                f"the tag {tag[:40]!r} is longer than {MAX_TAG_CHARS} characters or has a control character"
            )
    return tags


def _short_text(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    text = " ".join(value.split())
    if len(text) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return text or None


def is_web_url(url: object) -> bool:
    return isinstance(url, str) and re.match(r"^https?://\S", url.strip(), re.IGNORECASE) is not None


def _web_url(url: str | None) -> str | None:
    """Only http(s) URLs: a citation link a chat front end renders must not run script."""
    if url is not None and not is_web_url(url):
        raise ValueError(f"url {url[:80]!r} is not an http:// or https:// address")
    return url


def parse_metadata(
    *,
    published: object = None,
    lang: object = None,
    url: object = None,
    author: object = None,
    tags: object = None,
) -> Metadata:
    """Metadata from loosely typed values (JSON fields, form fields, file properties), or
    DocumentError saying which value is wrong and why."""
    try:
        return Metadata(
            published=parse_published(published),
            lang=parse_lang(lang),
            url=_web_url(_short_text(url, "url", MAX_URL_CHARS)),
            author=_short_text(author, "author", MAX_AUTHOR_CHARS),
            tags=parse_tags(tags),
        )
    except ValueError as exc:
        raise DocumentError(str(exc)) from None
