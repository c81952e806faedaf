"""Realistic news pages around known article text, for the HTML extraction tests and the
extractor comparison in docs/formats.md (`python -m tests.news_pages` prints the table).

Each `Article` is the true text of a story (headline, paragraphs, subheadings) and its metadata;
`page()` wraps it in one of several page layouts with the furniture news sites carry (cookie
banner, header, menu, breadcrumbs, share buttons, "read also" boxes, sidebar, related links,
comment form, newsletter box, footer). The seed articles (`seeds/*.txt`, scraped Arabic news)
are split by hand into their article text and the page furniture the scrape kept.
"""

from __future__ import annotations

import html
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@dataclass(frozen=True)
class Article:
    key: str
    lang: str
    headline: str
    # The story's blocks in order; a block starting with "## " is a subheading.
    blocks: tuple[str, ...]
    site: str
    url: str
    published: str  # as the page gives it (article:published_time)
    author: str
    tags: tuple[str, ...]
    # Furniture the scrape of a seed kept around the article (related links, comment prompts).
    extra_related: tuple[str, ...] = ()
    read_also: str | None = None  # a "read also" link inside the article body

    @property
    def paragraphs(self) -> list[str]:
        return [block.removeprefix("## ") for block in self.blocks]

    @property
    def text(self) -> str:
        """The article text as an extractor should return it: blocks separated by a blank line."""
        return "\n\n".join(self.paragraphs)


def _seed_blocks(name: str) -> list[str]:
    text = (SEEDS / name).read_text(encoding="utf-8")
    return [block.strip() for block in re.split(r"\n\s*\n|\n", text) if block.strip()]


def _seed_articles() -> list[Article]:
    """The five seed articles: which blocks are story, subheadings or furniture, read by hand."""
    b0 = _seed_blocks("000_864b449572c9df9e.txt")
    b1 = _seed_blocks("001_33ebafb7f274a61d.txt")
    b2 = _seed_blocks("002_b8689e71eb8b336f.txt")
    b3 = _seed_blocks("003_ce4d1666969f5692.txt")
    b4 = _seed_blocks("004_02fb0add3b835a0e.txt")

    def subheads(blocks: list[str], heads: set[int]) -> tuple[str, ...]:
        return tuple(f"## {b}" if i in heads else b for i, b in enumerate(blocks))

    return [
        Article(
            key="seed0",
            lang="ar",
            headline="مصطفى يبحث مع ريبورن الهجمات الأخيرة على ريف إدلب",
            blocks=subheads(b0, {5, 8, 12}),
            site="إيلاف",
            url="https://elaph.example/news/2019/09/1264281.html",
            published="2019-09-21T14:05:00+03:00",
            author="نصر المجالي",
            tags=("سوريا", "إدلب", "الائتلاف الوطني"),
        ),
        Article(
            key="seed1",
            lang="ar",
            headline=b1[0],
            blocks=tuple(b1[1:11]),
            site="نداء سوريا",
            url="https://nedaa.example/ar/news/coalition-us-french-delegations",
            published="2019-09-28T09:30:00+03:00",
            author="فريق التحرير",
            tags=("الائتلاف الوطني", "فرنسا", "الولايات المتحدة"),
            extra_related=(b1[11], b1[12], b1[13], b1[14]),
        ),
        Article(
            key="seed2",
            lang="ar",
            headline=b2[1],
            blocks=tuple(b2[4:10]),
            site="بلدي نيوز",
            url="https://baladi.example/ar/news/details/45512",
            published="2019-03-14",
            author="بلدي نيوز",
            tags=("بروكسل", "جيمس جيفري"),
            extra_related=tuple(b2[10:16]),
        ),
        Article(
            key="seed3",
            lang="ar",
            headline=b3[1],
            blocks=subheads([*b3[2:5], *b3[6:11]], {5}),
            site="مدونة هادي العبد الله",
            url="https://hadi.example/2019/09/21/us-diplomats-idlib/",
            published="2019-09-21T18:12:00+00:00",
            author="أحمد العلي",
            tags=("إدلب", "مجلس الأمن"),
            read_also=b3[5],
        ),
        Article(
            key="seed4",
            lang="ar",
            headline="جيفري: واشنطن وموسكو تبحثان مساراً محتملاً للحل في سوريا",
            blocks=tuple(b4),
            site="SY24",
            url="https://sy24.example/news/jeffrey-moscow-washington",
            published="2019-08-30T11:00:00+03:00",
            author="سلمى الحسن",
            tags=("جيمس جيفري", "روسيا"),
        ),
    ]


ENGLISH = [
    Article(
        key="en-harbour",
        lang="en",
        headline="Quokka marmalade festival draws record crowds to Port Elliot",
        blocks=(
            "Port Elliot's harbour was packed on Saturday as the annual quokka marmalade festival opened "
            "with more than forty growers selling jars of bitter orange and lime preserves.",
            "The organisers said about twelve thousand visitors came through the gates before noon, twice "
            "the number of last year, and the ferry company added three extra crossings from the mainland.",
            "## A bitter orange wins again",
            "The jury, chaired by the retired pastry chef Margaret Okonkwo, gave the first prize to a "
            "family farm from the valley for a bitter orange recipe that has not changed in four "
            "generations.",
            '"We pick the fruit in the last week of winter, when it is at its sharpest," said Tom Hadley, '
            "whose grandmother first entered the contest in 1961. He said the secret was patience, "
            "not sugar.",
            "Local traders welcomed the crowds but warned that parking near the pier remains a problem. "
            "The council has promised a shuttle bus from the railway station for next year's edition.",
            "The festival continues on Sunday with a cooking demonstration, a children's jam-tasting "
            "contest and the traditional lantern walk along the breakwater at dusk.",
        ),
        site="The Coastal Herald",
        url="https://coastalherald.example/news/2024/05/18/quokka-marmalade-festival",
        published="2024-05-18T08:45:00+09:30",
        author="Jane Whitfield",
        tags=("Festivals", "Port Elliot", "Food"),
    ),
    Article(
        key="en-council",
        lang="en",
        headline="City council approves budget for new tram line after marathon session",
        blocks=(
            "The city council approved a 412 million euro budget for the eastern tram line late on "
            "Tuesday, ending a debate that lasted more than eleven hours and split the governing coalition.",
            "The line will run for nine kilometres from the central station to the university hospital, "
            "with fourteen stops. Construction is expected to start next spring and to take four years.",
            "Councillor Ana Ribeiro, who led the transport committee, said the tram would take an estimated "
            "twenty thousand car journeys off the ring road every working day.",
            "## Opposition warns of delays",
            "Opponents argued that the cost estimate was too optimistic and pointed to the western line, "
            "which opened two years late and forty per cent over budget.",
            "Residents of the old town also raised concerns about noise during construction. The council "
            "said night work would be limited to the summer holidays.",
            "A public consultation on the exact location of the stops will open in September.",
        ),
        site="Metro Daily",
        url="https://metrodaily.example/local/tram-budget-approved",
        published="2023-11-07",
        author="David Mensah",
        tags=("Transport", "City council"),
    ),
]


def all_articles() -> list[Article]:
    return [*_seed_articles(), *ENGLISH]


# ---------------------------------------------------------------------------------------------
# Page furniture, in both languages

_FURNITURE = {
    "ar": {
        "cookie": "نستخدم ملفات تعريف الارتباط لتحسين تجربتك على موقعنا. بمتابعة التصفح فإنك توافق على "
        "سياسة الخصوصية. موافق",
        "menu": ["الرئيسية", "سياسة", "اقتصاد", "رياضة", "ثقافة", "منوعات", "اتصل بنا"],
        "breadcrumbs": ["الرئيسية", "أخبار", "سوريا"],
        "share": ["فيسبوك", "تويتر", "واتساب", "تيليغرام", "نسخ الرابط"],
        "byline": "بقلم",
        "read_also": "اقرأ أيضاً: وزير الخارجية التركي يلتقي نظيره الروسي في أنقرة لبحث الملف السوري",
        "most_read": "الأكثر قراءة",
        "most_read_items": [
            "ارتفاع أسعار الذهب في الأسواق المحلية مع تراجع الليرة",
            "منتخب الشباب يتأهل إلى نهائي البطولة العربية",
            "افتتاح معرض الكتاب الدولي بمشاركة مئتي دار نشر",
        ],
        "related": "مقالات ذات صلة",
        "related_items": [
            "مجلس الأمن يعقد جلسة طارئة حول الأوضاع الإنسانية في الشمال السوري",
            "الأمم المتحدة تحذر من موجة نزوح جديدة مع اقتراب فصل الشتاء",
            "تركيا تعزز نقاط المراقبة في ريف حماة الشمالي",
        ],
        "comments": "اترك تعليقاً. لن يتم نشر عنوان بريدك الإلكتروني. الاسم البريد الإلكتروني التعليق "
        "إرسال التعليق",
        "newsletter": "اشترك في النشرة البريدية ليصلك ملخص أهم الأخبار يومياً. اشترك الآن",
        "footer": ["من نحن", "سياسة الخصوصية", "شروط الاستخدام", "أعلن معنا"],
        "copyright": "جميع الحقوق محفوظة © 2024",
        "tags_label": "الوسوم",
    },
    "en": {
        "cookie": "We use cookies to improve your experience on our site. By continuing to browse you "
        "agree to our privacy policy. Accept all",
        "menu": ["Home", "News", "Business", "Sport", "Culture", "Opinion", "Contact us"],
        "breadcrumbs": ["Home", "News", "Local"],
        "share": ["Facebook", "Twitter", "WhatsApp", "Email", "Copy link"],
        "byline": "By",
        "read_also": "Read more: Ferry operator announces summer timetable with extra evening sailings",
        "most_read": "Most read",
        "most_read_items": [
            "Storm warning issued for the weekend as gales approach the coast",
            "Local football club signs striker from the second division",
            "Library reopens after eighteen months of renovation work",
        ],
        "related": "Related stories",
        "related_items": [
            "Farmers report early harvest after unusually warm spring",
            "Railway station car park to close for resurfacing in June",
            "Mayor defends decision to cut museum opening hours",
        ],
        "comments": "Leave a comment. Your email address will not be published. Name Email Comment "
        "Post comment",
        "newsletter": "Sign up to our morning briefing and get the top stories in your inbox. Subscribe",
        "footer": ["About us", "Privacy policy", "Terms of use", "Advertise"],
        "copyright": "All rights reserved © 2024",
        "tags_label": "Tags",
    },
}


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _links(items: list[str] | tuple[str, ...], cls: str = "") -> str:
    lis = "".join(f'<li><a href="/go/{i}">{_e(item)}</a></li>' for i, item in enumerate(items))
    return f'<ul class="{cls}">{lis}</ul>'


def _head(article: Article, site: str) -> str:
    tags = "".join(f'<meta property="article:tag" content="{_e(tag)}">' for tag in article.tags)
    keywords = _e(", ".join(article.tags))
    author = f'<meta name="author" content="{_e(article.author)}">' if article.author else ""
    return (
        f'<head><meta charset="utf-8"><title>{_e(article.headline)} - {_e(site)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="description" content="{_e(article.paragraphs[0][:150])}">'
        f'<meta name="keywords" content="{keywords}">{author}'
        f'<meta property="og:type" content="article">'
        f'<meta property="og:title" content="{_e(article.headline)}">'
        f'<meta property="og:url" content="{_e(article.url)}">'
        f'<meta property="og:site_name" content="{_e(site)}">'
        f'<meta property="article:published_time" content="{_e(article.published)}">{tags}'
        f'<link rel="canonical" href="{_e(article.url)}">'
        '<link rel="stylesheet" href="/static/site.css">'
        "<style>.cookie{position:fixed;bottom:0} .menu li{display:inline}</style>"
        '<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push("<p>x</p>")}'
        "</script></head>"
    )


def _story(article: Article, f: dict, *, paragraphs: str = "p") -> str:
    """The article's blocks, with a "read also" box after the second block."""
    parts = []
    for i, block in enumerate(article.blocks):
        if block.startswith("## "):
            parts.append(f"<h2>{_e(block[3:])}</h2>")
        elif paragraphs == "p":
            parts.append(f"<p>{_e(block)}</p>")
        else:  # old CMSs: one text block, paragraphs split by <br><br>
            parts.append(f"{_e(block)}<br><br>\n")
        if i == 1:
            box = article.read_also or f["read_also"]
            parts.append(f'<div class="read-also"><a href="/related/1">{_e(box)}</a></div>')
    inner = "".join(parts)
    return inner if paragraphs == "p" else f'<div class="text">{inner}</div>'


def semantic_page(article: Article) -> str:
    """An HTML5 page: chrome in <header>, <nav>, <aside>, <footer>; the story in <article>."""
    f = _FURNITURE[article.lang]
    site = article.site or "News"
    dir_attr = ' dir="rtl"' if article.lang == "ar" else ""
    related = [*f["related_items"], *article.extra_related]
    return (
        f'<!DOCTYPE html><html lang="{article.lang}"{dir_attr}>{_head(article, site)}<body>'
        f'<div class="cookie" role="dialog"><p>{_e(f["cookie"])}</p><button>OK</button></div>'
        f'<header class="site-header"><a class="logo" href="/">{_e(site)}</a>'
        f'<nav class="menu">{_links(f["menu"])}</nav></header>'
        f'<main><nav class="breadcrumbs">{_links(f["breadcrumbs"])}</nav>'
        f"<article><header><h1>{_e(article.headline)}</h1>"
        f'<p class="byline">{_e(f["byline"])} <a rel="author" href="/author/1">{_e(article.author)}</a> '
        f'<time datetime="{_e(article.published)}">{_e(article.published[:10])}</time></p></header>'
        f'<div class="share">{_links(f["share"])}</div>'
        f'<div class="entry-content">{_story(article, f)}</div>'
        f'<div class="tags">{_e(f["tags_label"])}: {_links(article.tags)}</div>'
        f"</article>"
        f'<section class="related"><h3>{_e(f["related"])}</h3>{_links(related)}</section>'
        f'<section id="comments"><h3>{_e(f["comments"])}</h3><form><textarea></textarea>'
        f"<button>OK</button></form></section></main>"
        f'<aside class="sidebar"><h3>{_e(f["most_read"])}</h3>{_links(f["most_read_items"])}'
        f'<div class="newsletter">{_e(f["newsletter"])}</div></aside>'
        f"<footer>{_links(f['footer'])}<p>{_e(f['copyright'])}</p></footer>"
        "<script>console.log('ready')</script></body></html>"
    )


def div_page(article: Article, *, paragraphs: str = "p") -> str:
    """The same page without HTML5 elements: every part is a <div> told apart by its class only,
    as on many older CMS templates."""
    f = _FURNITURE[article.lang]
    site = article.site or "News"
    dir_attr = ' dir="rtl"' if article.lang == "ar" else ""
    related = [*f["related_items"], *article.extra_related]
    return (
        f'<!DOCTYPE html><html lang="{article.lang}"{dir_attr}>{_head(article, site)}<body>'
        f'<div id="cookie-notice">{_e(f["cookie"])} <a href="#">OK</a></div>'
        f'<div id="header"><div class="logo"><a href="/">{_e(site)}</a></div>'
        f'<div class="main-menu">{_links(f["menu"])}</div></div>'
        f'<div id="wrapper"><div class="breadcrumb">{_links(f["breadcrumbs"])}</div>'
        f'<div class="content"><div class="post">'
        f'<h1 class="post-title">{_e(article.headline)}</h1>'
        f'<div class="post-meta"><span class="author">{_e(f["byline"])} {_e(article.author)}</span> '
        f'<span class="date">{_e(article.published[:10])}</span></div>'
        f'<div class="share-buttons">{_links(f["share"])}</div>'
        f'<div class="post-content">{_story(article, f, paragraphs=paragraphs)}</div>'
        f'<div class="post-tags">{_e(f["tags_label"])}: {_links(article.tags)}</div></div>'
        f'<div class="related-posts"><h3>{_e(f["related"])}</h3>{_links(related)}</div>'
        f'<div class="comments"><h3>{_e(f["comments"])}</h3></div></div>'
        f'<div class="sidebar"><div class="widget"><h3>{_e(f["most_read"])}</h3>'
        f'{_links(f["most_read_items"])}</div><div class="widget newsletter">{_e(f["newsletter"])}</div>'
        f"</div></div>"
        f'<div id="footer">{_links(f["footer"])}<div class="copyright">{_e(f["copyright"])}</div></div>'
        "</body></html>"
    )


def app_page(article: Article) -> str:
    """A page of a modern front end: generated class names that say nothing, the "read also" link
    and the newsletter prompt as plain paragraphs inside the story, a photo with a caption."""
    f = _FURNITURE[article.lang]
    site = article.site or "News"
    related = [*f["related_items"], *article.extra_related]
    story = []
    for i, block in enumerate(article.blocks):
        if block.startswith("## "):
            story.append(f'<h2 class="sc-1x9k">{_e(block[3:])}</h2>')
        else:
            story.append(f'<p class="sc-7fa2">{_e(block)}</p>')
        if i == 1:
            label, _, link = (article.read_also or f["read_also"]).partition(":")
            story.append(
                f'<p class="sc-7fa2"><strong>{_e(label)}:</strong> <a href="/r/7">{_e(link)}</a></p>'
            )
        if i == 2:
            story.append(
                '<figure class="sc-2b"><img src="/img/1.jpg" alt=""><figcaption>AFP</figcaption></figure>'
            )
    story.append(f'<p class="sc-7fa2"><em>{_e(f["newsletter"])}</em></p>')
    return (
        f'<!DOCTYPE html><html lang="{article.lang}">{_head(article, site)}<body><div id="__next">'
        f'<div class="css-k1p0">{_e(f["cookie"])}<span>OK</span></div>'
        f'<div class="css-h3ad"><a href="/">{_e(site)}</a>{_links(f["menu"], "css-m3n")}</div>'
        f'<div class="css-w0"><div class="css-c1">'
        f'<h1 class="css-t1">{_e(article.headline)}</h1>'
        f'<div class="css-b7"><span>{_e(article.author)}</span> '
        f"<span>{_e(article.published[:10])}</span></div>"
        f'<div class="css-s9">{_links(f["share"], "css-s9l")}</div>'
        f'<div class="css-bd">{"".join(story)}</div>'
        f'<div class="css-g4"><h3>{_e(f["related"])}</h3>{_links(related, "css-g4l")}</div></div>'
        f'<div class="css-r2"><h3>{_e(f["most_read"])}</h3>'
        f"{_links(f['most_read_items'], 'css-r2l')}</div></div>"
        f'<div class="css-f00">{_links(f["footer"], "css-f0l")}<span>{_e(f["copyright"])}</span></div>'
        "</div></body></html>"
    )


LAYOUTS: dict[str, Callable[[Article], str]] = {
    "html5": semantic_page,
    "divs": div_page,
    "br": lambda article: div_page(article, paragraphs="br"),
    "app": app_page,
}


# ---------------------------------------------------------------------------------------------
# Scoring

_WORD = re.compile(r"\w+")


def tokens(text: str) -> Counter[str]:
    return Counter(word.casefold() for word in _WORD.findall(text))


@dataclass
class Score:
    precision: float
    recall: float
    paragraphs_kept: float  # share of the article's blocks found whole in the extracted text
    breaks_kept: bool  # every pair of consecutive blocks separated by a blank line
    ms: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def score(article: Article, text: str, ms: float = 0.0) -> Score:
    """Token precision (how much of the output is story: the headline counts as story) and recall
    (how much of the story's paragraphs came out) over word multisets."""
    body = tokens(article.text)
    wanted = body + tokens(article.headline)
    got = tokens(text)
    kept = sum((got & wanted).values())
    precision = kept / max(1, sum(got.values()))
    recall = sum((got & body).values()) / max(1, sum(body.values()))
    whole = [p for p in article.paragraphs if p in text]
    paragraphs_kept = len(whole) / len(article.paragraphs)
    blocks = text.split("\n\n")
    breaks_kept = all(p in blocks for p in article.paragraphs)
    return Score(precision, recall, paragraphs_kept, breaks_kept, ms)


def compare(extractors: dict[str, Callable[[str], str]]) -> dict[str, dict[str, list[Score]]]:
    """Scores of each extractor on each article in each layout: {extractor: {layout: [Score]}}."""
    results: dict[str, dict[str, list[Score]]] = {name: {} for name in extractors}
    for layout, build in LAYOUTS.items():
        for article in all_articles():
            page = build(article)
            for name, extract in extractors.items():
                start = time.perf_counter()
                text = extract(page)
                ms = (time.perf_counter() - start) * 1000
                results[name].setdefault(layout, []).append(score(article, text, ms))
    return results


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def table(results: dict[str, dict[str, list[Score]]]) -> str:
    """A Markdown table: one row per extractor and layout, means over the articles."""
    lines = [
        "| extractor | layout | pages | precision | recall | F1 | paragraphs whole | blank lines kept "
        "| ms/page |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, layouts in results.items():
        for layout, scores in [*layouts.items(), ("all", [s for v in layouts.values() for s in v])]:
            lines.append(
                f"| {name} | {layout} | {len(scores)} | {_mean([s.precision for s in scores]):.3f} "
                f"| {_mean([s.recall for s in scores]):.3f} | {_mean([s.f1 for s in scores]):.3f} "
                f"| {_mean([s.paragraphs_kept for s in scores]):.2f} "
                f"| {sum(s.breaks_kept for s in scores)}/{len(scores)} "
                f"| {_mean([s.ms for s in scores]):.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    from qa.formats.html import extract_html
    from qa.formats.html_plain import html_to_text

    def old(page: str) -> str:
        return html_to_text(page)[1]

    def new(page: str) -> str:
        return extract_html(page).text

    for extract in (old, new):  # warm up: imports, lxml, the language model
        extract(semantic_page(ENGLISH[0]))
    print(table(compare({"html_to_text (before)": old, "qa.formats.html (trafilatura)": new})))


if __name__ == "__main__":
    main()
