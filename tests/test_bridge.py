"""The lexical bridge from Latin-script names to the Arabic terms of the index (`qa.bridge`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.bridge import Bridge
from qa.documents import iter_documents
from qa.ingest import ingest_documents
from qa.lexical import index_terms
from qa.search import SearchService, SearchSettings
from qa.service import open_service
from tests.conftest import SEEDS


@pytest.mark.parametrize(
    ("english", "arabic"),
    [
        ("Jeffrey", "جيفري"),
        ("Rayburn", "ريبورن"),
        ("Pedersen", "بيدرسن"),
        ("London", "لندن"),
        ("Mutasim", "المعتصم"),
        ("Mustafa", "مصطفى"),
        ("Idlib", "إدلب"),
        ("Geneva", "جنيف"),
        ("Erdogan", "أردوغان"),
    ],
)
def test_a_name_and_its_arabic_spelling_fold_to_one_skeleton(english, arabic):
    (term,) = index_terms(arabic)  # as the lexical index stores it: normalized and stemmed
    assert Bridge([term]).terms_for(f"Who is {english}?") == [term]  # whatever the stemmer cut


def test_the_bridge_finds_the_index_terms_of_the_names_and_numbers_of_a_question():
    text = "التقى عبد الرحمن مصطفى المبعوث جيمس جيفري في بروكسل وبحثا القرار 2254 مع بيدرسن"
    bridge = Bridge(index_terms(text))
    found = bridge.terms_for("Did Mustafa meet Jeffrey and Pedersen about resolution 2254?")
    assert {*index_terms("مصطفى جيفري بيدرسن"), "2254"} <= set(found)
    # Lower-case words of a capitalized question are left out ("meet" would find مت by chance).
    assert bridge.terms_for("What did they discuss about the meeting?") == []
    # A question typed all in lower case sounds out every word.
    assert set(index_terms("جيفري")) <= set(bridge.terms_for("who met jeffrey"))


def test_an_arabic_question_finds_the_latin_terms_of_english_passages():
    bridge = Bridge(index_terms("Mustafa met the envoy Jeffrey in London to discuss resolution 2254"))
    found = bridge.terms_for("ماذا بحث مصطفى مع جيفري في لندن حول القرار 2254؟")
    assert {"mustafa", "jeffrey", "london", "2254"} <= set(found)


def test_short_skeletons_find_nothing():
    bridge = Bridge(index_terms("الأسد رأس رئيس"))
    assert bridge.terms_for("Where is Assad?") == []  # SD: too short to tell from other words


def test_an_english_question_over_arabic_passages_uses_the_bridge(tmp_path: Path, fake_encoder):
    service = open_service(tmp_path / "index", encoder=fake_encoder)
    ingest_documents(service.index, fake_encoder, list(iter_documents([SEEDS])))
    question = "What did Pedersen say about the Syrian file?"
    without = SearchService(service.index, fake_encoder, SearchSettings(bridge_weight=0))

    def first_rank(searcher: SearchService) -> int:
        hits = searcher.ask(question, k=50, raw=True).passages
        return next(hit.rank for hit in hits if "بيدرسن" in hit.text)

    # The fake encoder knows nothing of Arabic: only the bridge can lift the passages naming him.
    assert first_rank(service) < first_rank(without)
