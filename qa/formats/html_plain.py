"""The hand-written HTML to text converter: every visible text of a page, without scripts and
page chrome (<nav>, <header> outside the article, <footer>, <aside>, forms, ...).

`qa.formats.html` uses it when trafilatura finds no main text, e.g. in a bare fragment such as
"<p>Hello</p>", where keeping everything visible is the right answer.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from qa.textnorm import clean_text

# Elements whose content is never article text: code, page chrome, widgets. <header> is handled
# apart (see _HTMLText).
_HTML_DROPPED = frozenset(
    {
        *("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form"),
        *("button", "svg", "iframe", "select", "canvas", "object", "audio", "video"),
    }
)
# Paragraph-level elements become a blank line, line-level ones a line break, table cells a space.
_HTML_PARAGRAPHS = frozenset(
    {
        *("p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"),
        *("pre", "table", "ul", "ol", "dl", "figure", "figcaption", "address", "hr", "details"),
        *("summary", "caption", "fieldset"),
    }
)
_HTML_LINES = frozenset({"br", "li", "tr", "dt", "dd"})
_HTML_CELLS = frozenset({"td", "th"})
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")  # HTML's own whitespace: NBSP is content, kept
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(" {2,}")


class _HTMLText(HTMLParser):
    """Collects the visible text and the first <title> of a page (entities already unescaped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._dropped_depth = 0
        self._article_depth = 0
        # One entry per open <header>: whether it was dropped. A header inside <article>/<main>
        # holds the headline and byline of the story, not site chrome, so that one is kept.
        self._headers: list[bool] = []
        self._in_title = False
        self._title_done = False
        # Line breaks wait here until the next visible text, so that nested or adjacent blocks
        # (</li><li>, </p></div>) give one break, the strongest asked for, instead of a pile.
        self._pending_breaks = 0

    def _break(self, count: int) -> None:
        self._pending_breaks = max(self._pending_breaks, count)

    def _drops(self, tag: str) -> bool:
        if tag == "header":
            dropped = self._dropped_depth > 0 or self._article_depth == 0
            self._headers.append(dropped)
            return dropped
        return tag in _HTML_DROPPED

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._drops(tag):
            self._dropped_depth += 1
            return
        if self._dropped_depth:
            return
        if tag in ("article", "main"):
            self._article_depth += 1
        if tag == "title" and not self._title_done:
            self._in_title = True
        elif tag == "br":  # unlike blocks, breaks add up: <br><br> is a blank line
            self._pending_breaks = min(2, self._pending_breaks + 1)
        elif tag in _HTML_PARAGRAPHS:
            self._break(2)
        elif tag in _HTML_LINES:
            self._break(1)
        elif tag in _HTML_CELLS:
            self.handle_data(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "header":
            closes_dropped = self._headers.pop() if self._headers else False  # a stray </header>
        else:
            closes_dropped = tag in _HTML_DROPPED
        if closes_dropped:
            self._dropped_depth = max(0, self._dropped_depth - 1)
            return
        if self._dropped_depth:
            return
        if tag in ("article", "main"):
            self._article_depth = max(0, self._article_depth - 1)
        if tag == "title" and self._in_title:
            self._in_title, self._title_done = False, True
        elif tag in _HTML_PARAGRAPHS:
            self._break(2)
        elif tag in _HTML_LINES and tag != "br":  # <br/> reports an end tag too: counted once
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self._dropped_depth:
            return
        if self._in_title:
            self.title_parts.append(data)
            return
        text = _HTML_SPACE.sub(" ", data)
        if text == " ":  # whitespace between tags: a word separator unless a line break is due
            if not self._pending_breaks:
                self.parts.append(" ")
            return
        if self._pending_breaks:
            self.parts.append("\n" * self._pending_breaks)
            self._pending_breaks = 0
        self.parts.append(text)


def html_to_text(html: str) -> tuple[str | None, str]:
    """(the <title> text or None, the visible text with one blank line at most between blocks)."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    joined = _SPACES.sub(" ", "".join(parser.parts))  # adjacent text nodes may each end in a space
    lines = (line.strip() for line in joined.split("\n"))
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    title = clean_text("".join(parser.title_parts))
    return title or None, text
