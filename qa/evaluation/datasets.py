"""Evaluation sets: questions with a gold document, over a corpus of documents.

SQuAD-format sets (data → paragraphs → context, qas) are read from the shared evaluation data by
path and never copied into the project. Each distinct paragraph becomes one document, so the
gold of a question is the paragraph it was written for; a paragraph repeated in a file (ARCD and
TyDi repeat some) is one document shared by all its questions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from qa import settings
from qa.documents import Document, iter_documents
from qa.errors import QAError

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_DIR = REPO_ROOT / "seeds"
SEED_QUESTIONS = REPO_ROOT / "tests" / "data" / "seed_questions.jsonl"
# 165 more questions about the seeds (110 English, 35 Arabic, 20 French, German or Spanish), each
# marked for tuning or held out, asked over the seeds among ~1,700 distractor passages.
HARD_QUESTIONS = REPO_ROOT / "tests" / "data" / "seed_questions_hard.jsonl"


class EvalDataError(QAError):
    """An evaluation set is missing or not in the expected format."""


def default_eval_data_dir() -> Path:
    """$QA_EVAL_DATA, else the shared evaluation data beside the repository."""
    return settings.EVAL_DATA.get()


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    text: str
    gold: str  # id of the document that answers it
    evidence: str | None = None  # a phrase the best passage should contain (seed questions)


@dataclass(frozen=True)
class EvalSet:
    name: str
    description: str
    documents: tuple[Document, ...]
    questions: tuple[EvalQuestion, ...]

    def subset(self, *, max_documents: int | None = None, max_questions: int | None = None) -> EvalSet:
        """The first `max_documents` documents with their questions, then `max_questions` of those
        spread evenly over the set (the first N would all be about the first few articles)."""
        documents = self.documents[:max_documents] if max_documents else self.documents
        kept = {d.id for d in documents}
        questions = [q for q in self.questions if q.gold in kept]
        if max_questions and len(questions) > max_questions:
            step = len(questions) / max_questions
            questions = [questions[int(i * step)] for i in range(max_questions)]
        return replace(self, documents=tuple(documents), questions=tuple(questions))


def _read_squad(path: Path) -> list[dict]:
    if not path.is_file():
        raise EvalDataError(
            f"evaluation file {path} not found. Point --data (or QA_EVAL_DATA) at the folder that "
            "holds xquad/, arcd/ and tydiqa-goldp-ar/"
        )
    try:
        articles = json.loads(path.read_text(encoding="utf-8"))["data"]
        return [
            {"context": p["context"], "qas": [(q["id"], q["question"]) for q in p["qas"]]}
            for article in articles
            for p in article["paragraphs"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise EvalDataError(f"{path} is not a SQuAD-format file ({exc!r})") from exc


def load_squad(
    name: str, context_path: Path, question_path: Path | None = None, description: str = ""
) -> EvalSet:
    """Paragraphs of `context_path` as documents; questions from `question_path` when given (a
    parallel file with the same question ids, e.g. the English questions of XQuAD), else from
    `context_path` itself."""
    paragraphs = _read_squad(context_path)
    translated: dict[str, str] = {}
    if question_path is not None:
        translated = {qid: text for p in _read_squad(question_path) for qid, text in p["qas"]}
    document_ids: dict[str, str] = {}
    documents: list[Document] = []
    questions: list[EvalQuestion] = []
    for paragraph in paragraphs:
        context = paragraph["context"]
        if context not in document_ids:
            doc_id = f"{name}-{len(documents):04d}"
            document_ids[context] = doc_id
            documents.append(Document(id=doc_id, title=doc_id, text=context, source=str(context_path)))
        for qid, text in paragraph["qas"]:
            if question_path is not None:
                if qid not in translated:
                    raise EvalDataError(f"question {qid} of {context_path} is missing from {question_path}")
                text = translated[qid]
            questions.append(EvalQuestion(id=qid, text=text.strip(), gold=document_ids[context]))
    return EvalSet(name, description, tuple(documents), tuple(questions))


def load_seeds(
    seed_dir: Path = SEED_DIR,
    questions_path: Path = SEED_QUESTIONS,
    name: str = "seeds",
    keep: Callable[[dict], bool] = lambda record: True,
) -> EvalSet:
    """The seed articles with the hand-written questions about them (those `keep` accepts)."""
    if not questions_path.is_file():
        raise EvalDataError(f"seed questions {questions_path} not found")
    documents = tuple(d for d in iter_documents([seed_dir]) if isinstance(d, Document))
    questions = []
    for number, line in enumerate(questions_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if not keep(record):
            continue
        questions.append(
            EvalQuestion(
                id=f"seed-{number}",
                text=record["question"],
                gold=record["document"],
                evidence=record.get("evidence"),
            )
        )
    known = {d.id for d in documents}
    unknown = sorted({q.gold for q in questions} - known)
    if unknown:
        raise EvalDataError(f"seed questions name documents that are not in {seed_dir}: {unknown}")
    return EvalSet(name, "seed articles, English and Arabic questions", documents, tuple(questions))


@dataclass(frozen=True)
class SetSpec:
    description: str
    load: Callable[[Path], EvalSet]


def _xquad(name: str, question_file: str | None) -> Callable[[Path], EvalSet]:
    def load(data: Path) -> EvalSet:
        questions = data / "xquad" / question_file if question_file else None
        return load_squad(name, data / "xquad" / "xquad.ar.json", questions, SETS[name].description)

    return load


def _hard(name: str, split: str, lang: str | None = None) -> Callable[[Path], EvalSet]:
    """The seeds among the paragraphs of XQuAD (Arabic) and TyDi-ar dev as distractors, with the
    hard questions of one split (and one language)."""

    def load(data: Path) -> EvalSet:
        def keep(record: dict) -> bool:
            return record.get("split") == split and (lang is None or record.get("lang") == lang)

        seeds = load_seeds(questions_path=HARD_QUESTIONS, name=name, keep=keep)
        distractors = [
            *load_squad("xquad-ar", data / "xquad" / "xquad.ar.json").documents,
            *load_squad("tydi-ar", data / "tydiqa-goldp-ar" / "arabic_tydiqa_dev.json").documents,
        ]
        return replace(seeds, description=SETS[name].description, documents=(*seeds.documents, *distractors))

    return load


def _single(name: str, relative: str) -> Callable[[Path], EvalSet]:
    return lambda data: load_squad(name, data / relative, None, SETS[name].description)


SETS: dict[str, SetSpec] = {
    "xquad-en-ar": SetSpec(
        "XQuAD: English questions, Arabic paragraphs", _xquad("xquad-en-ar", "xquad.en.json")
    ),
    "xquad-ar-ar": SetSpec("XQuAD: Arabic questions, Arabic paragraphs", _xquad("xquad-ar-ar", None)),
    "xquad-ar-en": SetSpec(
        "XQuAD: Arabic questions, English paragraphs",
        lambda data: load_squad(
            "xquad-ar-en",
            data / "xquad" / "xquad.en.json",
            data / "xquad" / "xquad.ar.json",
            SETS["xquad-ar-en"].description,
        ),
    ),
    # The test split: the full file repeats many paragraphs across its two halves (see copies.py)
    # and would double the first run's embedding time.
    "arcd": SetSpec("ARCD test split: Arabic Wikipedia", _single("arcd", "arcd/arcd-test.json")),
    "arcd-full": SetSpec("ARCD train + test", _single("arcd-full", "arcd/arcd.json")),
    "tydi-ar": SetSpec(
        "TyDi QA GoldP, Arabic dev split", _single("tydi-ar", "tydiqa-goldp-ar/arabic_tydiqa_dev.json")
    ),
    "seeds": SetSpec("seed articles, English and Arabic questions", lambda data: load_seeds()),
    "hard-tune": SetSpec(
        "seeds among 1,700 distractor passages: tuning questions", _hard("hard-tune", "tune")
    ),
    "hard-held-out": SetSpec(
        "seeds among 1,700 distractor passages: held-out questions", _hard("hard-held-out", "held-out")
    ),
    "hard-held-out-en": SetSpec(
        "seeds among 1,700 distractor passages: held-out English questions",
        _hard("hard-held-out-en", "held-out", "en"),
    ),
}


def load_set(name: str, data_dir: Path | None = None) -> EvalSet:
    if name not in SETS:
        raise EvalDataError(f"unknown evaluation set {name!r}; known sets: {', '.join(SETS)}")
    return SETS[name].load(Path(data_dir) if data_dir else default_eval_data_dir())
