"""HTML of the web form: a question box, and the answers of `SearchService` as escaped text.

Every piece of text that comes from a question or a document goes through `escape`, in element
content and in attribute values alike; `dir="auto"` lets each passage and title run right to left
when it is Arabic and left to right when it is English.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from qa.schema import AskResponse, PassageHit
from qa.search import MAX_K, MAX_QUESTION_CHARS

EXAMPLE_QUESTION = "who met Jeffrey in Brussels"


def _passage(hit: PassageHit) -> str:
    """The passage with its answer sentence in <mark> (offsets are into the document)."""
    text = hit.text
    start, end = hit.answer.start - hit.start, hit.answer.end - hit.start
    if not 0 <= start <= end <= len(text):
        return escape(text)
    return f"{escape(text[:start])}<mark>{escape(text[start:end])}</mark>{escape(text[end:])}"


def _cited(hit: PassageHit) -> str:
    """Where the passage comes from: source and date, when the document gives them."""
    document = hit.document
    parts = [f"<bdi>{escape(document.source)}</bdi>"] if document.source else []
    if document.published:
        parts.append(
            f'<time datetime="{escape(document.published)}">{escape(document.published[:10])}</time>'
        )
    return "".join(f" · {part}" for part in parts)


def _hit(hit: PassageHit) -> str:
    document = hit.document
    link = f"/api/documents/{quote(document.id, safe='')}"
    # The passage's place in its document, for scripts and tests that read the page.
    where = f'data-document="{escape(document.id)}" data-start="{hit.start}" data-end="{hit.end}"'
    return (
        f'<li class="hit" {where}>'
        f'<h2 dir="auto">{escape(document.title)}</h2>'
        f'<p class="meta">{hit.rank}. <a href="{escape(link)}"><bdi>{escape(document.id)}</bdi></a>'
        f"{_cited(hit)} · score {hit.score:.4f}</p>"
        f'<p class="passage" dir="auto">{_passage(hit)}</p>'
        "</li>"
    )


def _results(response: AskResponse, empty_hint: str) -> str:
    if not response.passages:
        hint = escape(empty_hint)
        return f'<p class="message empty" role="status">No passage answers this question. {hint}</p>'
    count = len(response.passages)
    summary = (
        f'<p class="summary">{count} passage{"s" if count != 1 else ""} · {response.took_ms:.0f} ms · '
        f"{escape(response.mode)}</p>"
    )
    return summary + '<ol class="results">' + "".join(_hit(h) for h in response.passages) + "</ol>"


def render_page(
    *,
    question: str = "",
    k: str = "5",
    per_document: str = "",
    source: str = "",
    since: str = "",
    until: str = "",
    response: AskResponse | None = None,
    error: str | None = None,
    empty_hint: str = "",
) -> str:
    """The whole page: the form (filled with what was asked), then an error or the results."""
    title = f"{question.strip()[:80]} · qa" if question.strip() else "qa · ask the news"
    body = ""
    if error:
        body = f'<p class="message" role="alert">{escape(error)}</p>'
    elif response is not None:
        body = _results(response, empty_hint)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="/assets/form.css">
</head>
<body>
<main>
<h1>Ask the news</h1>
<form method="get" action="/" role="search">
<label class="question">Question
<input name="q" type="search" dir="auto" value="{escape(question)}" maxlength="{MAX_QUESTION_CHARS}"
 placeholder="{escape(EXAMPLE_QUESTION)}" autofocus></label>
<label>Passages
<input name="k" type="number" min="1" max="{MAX_K}" value="{escape(k)}"></label>
<label>Per article
<input name="per_document" type="number" min="1" max="{MAX_K}" value="{escape(per_document)}"
 placeholder="any"></label>
<fieldset class="filters"><legend>Only</legend>
<label>Source
<input name="source" type="text" dir="auto" value="{escape(source)}" placeholder="any"></label>
<label>From
<input name="since" type="date" value="{escape(since)}"></label>
<label>Until
<input name="until" type="date" value="{escape(until)}"></label>
</fieldset>
<button type="submit">Ask</button>
</form>
{body}
<footer>English or Arabic questions · <a href="/schema">JSON API</a></footer>
</main>
</body>
</html>
"""
