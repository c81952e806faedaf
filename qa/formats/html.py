"""News pages: the article's main text and metadata, with trafilatura.

trafilatura finds the main text of a page and leaves out menus, sidebars, related links, share
buttons and cookie banners, which the hand-written converter (`html_plain`) keeps when they are
plain <div>s; docs/formats.md has the comparison on the seed articles and built pages. Its own
plain-text output puts one newline between paragraphs, but chunking splits on blank lines, so the
text is rebuilt here from its XML tree. Where it finds no main text (a bare fragment such as
"<p>Hello</p>", which uploads and tests send), the hand-written converter keeps every visible text.

Text order is never changed: Arabic stays in logical order, as in the page source.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

from qa.errors import DocumentError
from qa.formats import Extracted, lenient_metadata
from qa.formats.html_plain import html_to_text
from qa.language import detect_language
from qa.metadata import parse_lang, parse_published
from qa.textnorm import clean_text

# trafilatura logs every page it judges too short ("discarding data") at WARNING and ERROR; here
# that is the expected path to the fallback, not something an ingest run should print.
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

_config = None


def _trafilatura_config():
    """trafilatura's defaults, with two changes:

    - its file size limit (20,000,000 characters) above ours (20 MiB), so that no page between
      the two is refused by it alone;
    - no "baseline rescue" (MIN_EXTRACTED_SIZE 0): below 250 characters of main text it would
      return every text of the page as one block, chrome and all, where the fallback here keeps
      the paragraphs and drops <nav>, <header>, <footer> and forms.
    """
    global _config
    if _config is None:
        from trafilatura.settings import use_config

        _config = use_config()
        _config.set("DEFAULT", "MAX_FILE_SIZE", str(64 * 1024 * 1024))
        _config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "0")
    return _config


# Meta tags that hold the publication time, most specific first. trafilatura's own date (htmldate)
# is not used: it keeps only the day, and even without its "extensive search" it takes a date
# from any visible text, such as a copyright line; a wrong date is worse for the date filters
# than none. These tags usually carry the time and zone too.
_PUBLISHED_KEYS = (
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "article.published",
    "publish-date",
    "publishdate",
    "pubdate",
    "dc.date.issued",
    "dcterms.issued",
)
_JSON_LD_LIMIT = 200_000  # characters of JSON-LD read; larger blocks are not metadata


def extract_html(page: str) -> Extracted:
    """The main text, title and metadata of a page (already decoded), or DocumentError when no
    text is left."""
    found = _trafilatura(page)
    if found is None:
        return _fallback(page)
    document, tree = found
    text = _body_text(document.body)
    if not clean_text(text):
        return _fallback(page)
    tags = _meta_tags(tree)
    title = _title(tags, tree) or clean_text(document.title or "") or None
    meta = lenient_metadata(
        published=_published(tags, tree),
        lang=_declared_lang(tree, text),
        url=document.url if _is_web_url(document.url) else None,
        author=document.author,
        tags=[*(document.tags or []), *(document.categories or [])],
    )
    return Extracted(text, title, meta)


def _fallback(page: str) -> Extracted:
    title, text = html_to_text(page)
    if not clean_text(text):
        raise DocumentError("no text left after removing the HTML markup")
    return Extracted(text, title)


def _trafilatura(page: str) -> tuple[Any, Any] | None:
    """(trafilatura's Document, the parsed page), or None when it found nothing."""
    from trafilatura import bare_extraction
    from trafilatura.utils import load_html

    try:
        tree = load_html(page)
        if tree is None:
            return None
        document = bare_extraction(
            tree,
            with_metadata=True,
            include_comments=False,  # reader comments are not the article
            include_tables=True,
            # Its date is not used (see _PUBLISHED_KEYS): the quickest search.
            date_extraction_params={"extensive_search": False, "original_date": True},
            config=_trafilatura_config(),
        )
    except Exception:  # any page trafilatura cannot handle still has the fallback
        logging.getLogger(__name__).debug("trafilatura failed on a page", exc_info=True)
        return None
    if document is None or document.body is None:
        return None
    return document, tree


# -- text ---------------------------------------------------------------------------------------

# trafilatura's output elements: blocks end a paragraph, lines a line, cells a table cell.
_BLOCKS = frozenset({"p", "head", "quote", "list", "table", "code", "div", "section", "article"})
_LINES = frozenset({"item", "row"})
_CELLS = frozenset({"cell"})
_SPACE = re.compile(r"[ \t\n\r\f]+")  # NBSP is content, kept
_SPACES = re.compile(" {2,}")
_BLANK_LINES = re.compile(r"\n{3,}")


def _body_text(body: Any) -> str:
    """Plain text of trafilatura's XML body: a blank line between paragraphs, headings and lists,
    a line break between list items, table rows and <br>s (two <br>s make a paragraph)."""
    parts: list[str] = []
    pending = 0  # line breaks due before the next text: the strongest asked for wins

    def add(text: str | None) -> None:
        nonlocal pending
        if not text:
            return
        text = _SPACE.sub(" ", text)
        if text == " ":
            if not pending:
                parts.append(" ")
            return
        if pending:
            parts.append("\n" * pending)
            pending = 0
        parts.append(text)

    # iterwalk, not recursion: a deeply nested page cannot exhaust the stack.
    for event, element in etree.iterwalk(body, events=("start", "end")):
        tag = element.tag
        if not isinstance(tag, str):  # comments, processing instructions
            if event == "end":
                add(element.tail)
            continue
        if event == "start":
            if tag == "lb":
                pending = min(2, pending + 1)
            elif tag in _BLOCKS:
                pending = max(pending, 2)
            elif tag in _LINES:
                pending = max(pending, 1)
            elif tag in _CELLS:
                add(" ")
            if tag != "graphic":
                add(element.text)
        else:
            if tag in _BLOCKS:
                pending = max(pending, 2)
            elif tag in _LINES:
                pending = max(pending, 1)
            if element is not body:
                add(element.tail)
    joined = _SPACES.sub(" ", "".join(parts))
    lines = (line.strip() for line in joined.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


# -- metadata -------------------------------------------------------------------------------------


def _is_web_url(url: str | None) -> bool:
    return bool(url) and url.startswith(("http://", "https://"))  # type: ignore[union-attr]


def _meta_tags(tree: Any) -> dict[str, str]:
    """The first content of each <meta> property, name or itemprop (lower-cased)."""
    found: dict[str, str] = {}
    for meta in tree.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
        content = meta.get("content")
        if key and content and content.strip() and key not in found:
            found[key] = content
    return found


def _title(tags: dict[str, str], tree: Any) -> str | None:
    """The headline a news site gives for sharing (og:title), else the page's <title>: both are
    set by the site's CMS. trafilatura prefers a lone <h1>, which on some templates is the logo,
    so its title is the last resort."""
    for key in ("og:title", "twitter:title"):
        if title := clean_text(tags.get(key, "")):
            return title
    element = tree.find(".//head//title")
    return (clean_text(element.text_content()) or None) if element is not None else None


def _published(tags: dict[str, str], tree: Any) -> str | None:
    """The first publication time in the page's meta tags or JSON-LD that reads as ISO 8601."""
    candidates = [tags[key] for key in _PUBLISHED_KEYS if key in tags]
    candidates += list(_json_ld_dates(tree))
    # The first machine-readable <time> of the article itself (a byline), not of a sidebar.
    candidates += [str(value) for value in tree.xpath("(//article//time[@datetime])[1]/@datetime")]
    for candidate in candidates:
        try:
            return parse_published(candidate)
        except ValueError:
            continue
    return None


def _json_ld_dates(tree: Any) -> Iterator[str]:
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        source = script.text or ""
        if len(source) > _JSON_LD_LIMIT:
            continue
        try:
            data = json.loads(source)
        except ValueError:
            continue
        yield from _find_key(data, "datePublished", depth=0)


def _find_key(data: object, key: str, *, depth: int) -> Iterator[str]:
    if depth > 6:  # JSON-LD nests a few levels (@graph, mainEntity); deeper is not metadata
        return
    if isinstance(data, dict):
        value = data.get(key)
        if isinstance(value, str):
            yield value
        for child in data.values():
            yield from _find_key(child, key, depth=depth + 1)
    elif isinstance(data, list):
        for child in data:
            yield from _find_key(child, key, depth=depth + 1)


def _declared_lang(tree: Any, text: str) -> str | None:
    """The page's <html lang> when the text is in that language; else None, and the language is
    detected from the text: templates often keep a lang="en" whatever the article's language."""
    try:
        declared = parse_lang(tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang"))
    except ValueError:
        return None
    if declared is None or declared.split("-")[0] != detect_language(text):
        return None
    return declared
