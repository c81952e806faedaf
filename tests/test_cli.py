"""The `qa` command line through click's CliRunner: each command's output, and every error it
prints, as the user sees them (exit status, stdout, stderr).

Commands that load the model get the fake encoder (`fake_model`); one test runs the real one.
Errors of other commands are tested beside them: `qa eval` in test_evaluation.py, a bad model
setting (`qa model info`) in test_errors.py, symbolic links under `qa ingest` in
test_symlinks.py, `qa ask` filters with the real model in test_filters.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner, Result

from qa import settings
from qa.cli import main
from qa.index import open_index
from qa.search import EMPTY_AFTER_CLEANING
from qa.service import model_identity
from tests.fakes import FakeEncoder
from tests.helpers import BRUSSELS, REPO, SEED_IDS, SEEDS, qa_env

BRUSSELS_QUESTION = "who met Jeffrey in Brussels"


def qa(*args: str | Path, input: str | None = None) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args], input=input)


def error_line(result: Result) -> str:
    """The one line a failing command prints last on standard error."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands load the fake encoder instead of the model (`qa.service.open_service` and
    `qa model info` both ask `load_encoder`)."""
    monkeypatch.setattr("qa.service.load_encoder", lambda: FakeEncoder())
    monkeypatch.setattr("embeddings.engines.load_encoder", lambda: FakeEncoder())


@pytest.fixture
def seeded_index(tmp_path: Path, fake_model: None) -> Path:
    """`qa ingest seeds/` on the fake encoder."""
    index = tmp_path / "index"
    result = qa("ingest", SEEDS, "--index", index)
    assert result.exit_code == 0, result.output
    return index


@pytest.fixture
def empty_index(tmp_path: Path) -> Path:
    directory = tmp_path / "empty"
    open_index(directory, model_identity(FakeEncoder())).close()
    return directory


# -- qa ingest ---------------------------------------------------------------------------------------


def test_ingest_takes_files_folders_and_jsonl(tmp_path: Path, fake_model: None) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "kites.txt").write_text("Kites over Kabul\nChildren flew kites over Kabul on Friday.")
    (folder / "harbour.md").write_text("# Harbour\n\nThe harbour of Tartus loaded wheat.")
    single = tmp_path / "single.html"
    single.write_text("<html><body><p>Quokkas visited Aleppo.</p></body></html>")
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps({"id": "r1", "text": "Talks in Ankara.", "source": "AFP", "tags": ["talks"]})
        + "\n"
        + json.dumps({"id": "r2", "title": "Geneva", "text": "The envoy spoke in Geneva."})
        + "\n"
    )
    index = tmp_path / "index"
    added = qa("ingest", folder, single, rows, "--index", index)
    assert added.exit_code == 0, added.output
    assert re.match(r"^5 added, 0 replaced, 0 unchanged, 0 failed; \d+ passages in [\d.]+ s$", added.stdout)
    assert added.stderr == ""

    again = qa("ingest", folder, single, rows, "--index", index, "--json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["added"] == [] and sorted(report["unchanged"]) == ["harbour", "kites", "r1", "r2", "single"]

    listed = qa("docs", "--index", index, "--json")
    rows_listed = {row["id"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert rows_listed["r1"]["source"] == "AFP" and rows_listed["r1"]["tags"] == ["talks"]
    assert rows_listed["r2"]["title"] == "Geneva"


def test_ingest_reports_a_file_it_cannot_read_and_ingests_the_rest(tmp_path: Path, fake_model: None) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "good.txt").write_text("Mustafa met Jeffrey in Brussels.")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02 not text")
    result = qa("ingest", folder, "--index", tmp_path / "index")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"skipped {folder / 'binary.txt'}: ")
    assert "binary" in result.stderr and len(result.stderr.splitlines()) == 1
    assert result.stdout.startswith("1 added, 0 replaced, 0 unchanged, 1 failed;")


def test_ingest_of_a_missing_path_fails_before_creating_the_index(tmp_path: Path, fake_model: None) -> None:
    missing = tmp_path / "nowhere.txt"
    result = qa("ingest", SEEDS, missing, "--index", tmp_path / "index")
    assert result.exit_code == 1
    assert error_line(result) == f"Error: no such file or folder: {missing}"
    assert not (tmp_path / "index").exists()


def test_ingest_needs_a_path() -> None:
    result = qa("ingest")
    assert result.exit_code == 2 and "Missing argument 'PATHS...'" in result.stderr


# -- qa ask ------------------------------------------------------------------------------------------


def test_ask_prints_passages_with_their_documents(seeded_index: Path) -> None:
    result = qa("ask", "Brussels", "Jeffrey", "-k", "2", "--index", seeded_index)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Q: Brussels Jeffrey"  # the words form one question
    assert [line.split(".")[0] for line in lines if re.match(r"^\d+\. ", line)] == ["1", "2"]
    assert re.search(
        rf"\[{BRUSSELS}, 20\d\d-\d\d-\d\d, score \d\.\d{{4}}\]|\[{BRUSSELS}, score", result.stdout
    )
    assert re.match(r"^\([\d.]+ ms\)$", lines[-1])


def test_ask_json_is_the_api_shape(seeded_index: Path) -> None:
    result = qa("ask", "جيفري بروكسل", "-k", "3", "--mode", "lexical", "--index", seeded_index, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"question", "passages", "took_ms", "mode"} and body["mode"] == "lexical"
    assert len(body["passages"]) == 3 and body["passages"][0]["document"]["id"] == BRUSSELS


def test_ask_reads_one_question_per_line_from_stdin(seeded_index: Path) -> None:
    result = qa("ask", "-", "--index", seeded_index, "--json", input="Brussels Jeffrey\n\n  Idlib  \n")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["question"] for line in result.stdout.splitlines()] == [
        "Brussels Jeffrey",
        "Idlib",
    ]


def test_ask_goes_on_after_a_bad_question_from_stdin_and_fails_at_the_end(seeded_index: Path) -> None:
    result = qa("ask", "-", "--index", seeded_index, "--json", input="Brussels\n\u200b\nIdlib\n")
    assert result.exit_code == 1
    assert [json.loads(line)["question"] for line in result.stdout.splitlines()] == ["Brussels", "Idlib"]
    assert result.stderr == f"error: {EMPTY_AFTER_CLEANING} (question: '\\u200b')\n"


def test_ask_says_when_nothing_answers(empty_index: Path, fake_model: None) -> None:
    result = qa("ask", "Brussels", "--index", empty_index)
    assert result.exit_code == 0, result.output
    assert "  no passages found" in result.stdout.splitlines()


def test_ask_needs_a_question() -> None:
    result = qa("ask")
    assert result.exit_code == 2
    assert error_line(result) == "Error: give a question, or - to read one question per line from stdin"


# Each fails before the model loads or the index opens: the index named here does not exist.
ASK_ERRORS = {
    "empty question": (["   "], "the question is empty"),
    "nothing visible": (["\u200b"], EMPTY_AFTER_CLEANING),
    "too long": (["x" * 2001], "limit is 2000"),
    "k 0": (["Brussels", "-k", "0"], "k must be a whole number from 1 to 50"),
    "k 51": (["Brussels", "-k", "51"], "k must be a whole number from 1 to 50"),
    "per-document 0": (
        ["Brussels", "--per-document", "0"],
        "per_document must be a whole number from 1 to 50",
    ),
    "bad date": (
        ["Brussels", "--after", "2020-31-01"],
        "filter.published_after '2020-31-01' is not a real date",
    ),
}


@pytest.mark.parametrize(("args", "words"), ASK_ERRORS.values(), ids=ASK_ERRORS.keys())
def test_ask_refuses_bad_input_in_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    result = qa("ask", *args, "--index", tmp_path / "none")
    assert result.exit_code == 1, result.output
    assert error_line(result).startswith("Error: ") and words in error_line(result)
    assert result.stdout == "" and not (tmp_path / "none").exists()


@pytest.mark.parametrize("args", [["-k", "five"], ["--mode", "magic"]], ids=["k not a number", "mode"])
def test_ask_refuses_bad_options_as_usage_errors(tmp_path: Path, args: list[str]) -> None:
    result = qa("ask", "Brussels", *args, "--index", tmp_path / "none")
    assert result.exit_code == 2 and "Invalid value" in result.stderr


def test_ask_on_a_missing_index_says_how_to_make_one(tmp_path: Path, fake_model: None) -> None:
    missing = tmp_path / "none"
    result = qa("ask", "Brussels", "--index", missing)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: no index at {missing}. Create one: qa ingest PATH --index {missing}"
    assert not missing.exists()


# -- qa docs, remove, export, compact: the index alone -------------------------------------------------


def test_docs_lists_every_document(seeded_index: Path) -> None:
    text = qa("docs", "--index", seeded_index)
    assert text.exit_code == 0, text.output
    assert [line.split("\t")[0] for line in text.stdout.splitlines()] == SEED_IDS
    assert all(re.match(r"^\S+\t\d+ passages\t.+$", line) for line in text.stdout.splitlines())
    rows = [json.loads(line) for line in qa("docs", "--index", seeded_index, "--json").stdout.splitlines()]
    assert [row["id"] for row in rows] == SEED_IDS
    assert all({"id", "title", "source", "passages"} <= set(row) for row in rows)


def test_remove_takes_a_document_out(seeded_index: Path) -> None:
    result = qa("remove", BRUSSELS, "--index", seeded_index)
    assert (result.exit_code, result.stdout) == (0, f"removed {BRUSSELS}\n")
    listed = qa("docs", "--index", seeded_index).stdout
    assert BRUSSELS not in listed and len(listed.splitlines()) == len(SEED_IDS) - 1


def test_remove_of_an_unknown_document_fails_in_one_line(seeded_index: Path) -> None:
    result = qa("remove", "no-such-doc", "--index", seeded_index)
    assert result.exit_code == 1
    assert error_line(result) == "Error: no document with id 'no-such-doc' in the index"


def test_export_is_what_ingest_reads_back(seeded_index: Path, tmp_path: Path) -> None:
    exported = qa("export", "--index", seeded_index)
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert sorted(row["id"] for row in rows) == SEED_IDS
    assert (
        next(row for row in rows if row["id"] == BRUSSELS)["text"] == (SEEDS / f"{BRUSSELS}.txt").read_text()
    )
    dump = tmp_path / "documents.jsonl"
    dump.write_text(exported.stdout, encoding="utf-8")
    copy = tmp_path / "copy"
    assert qa("ingest", dump, "--index", copy).exit_code == 0
    assert qa("export", "--index", copy).stdout == exported.stdout


def test_compact_reports_what_it_folded(seeded_index: Path) -> None:
    text = qa("compact", "--index", seeded_index)
    assert text.exit_code == 0, text.output
    assert re.match(r"^compacted: \d+ vectors \(\w+\), \d+ logged changes folded in [\d.]+ s$", text.stdout)
    again = qa("compact", "--index", seeded_index)  # nothing left to fold: said so, no traceback
    assert (again.exit_code, again.stdout) == (0, "not compacted: nothing to fold\n")
    figures = json.loads(qa("compact", "--index", seeded_index, "--json").stdout)
    assert figures["compacted"] is False and figures["reason"] == "nothing to fold"


@pytest.mark.parametrize("command", [["docs"], ["export"], ["compact"], ["remove", BRUSSELS]])
def test_commands_on_a_missing_index_fail_in_one_line_and_create_nothing(tmp_path: Path, command) -> None:
    missing = tmp_path / "none"
    result = qa(*command, "--index", missing)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: no index at {missing}. Create one: qa ingest PATH --index {missing}"
    assert not missing.exists()


# -- qa config ------------------------------------------------------------------------------------------


def test_config_shows_values_and_sources_with_secrets_masked(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("QA_API_TOKEN", "tok-s3cret")
    monkeypatch.setenv("QA_INDEX_DIR", "postgresql://qa:pw-s3cret@db/news")
    monkeypatch.setenv("QA_DATA_DIR", str(tmp_path))
    result = qa("config", "--json")
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    entries = {entry["name"]: entry for entry in json.loads(result.output)["settings"]}
    assert list(entries) == [setting.name for setting in settings.SETTINGS]
    assert entries["QA_API_TOKEN"] == {**entries["QA_API_TOKEN"], "value": "****", "source": "environment"}
    assert entries["QA_INDEX_DIR"]["value"] == "postgresql://qa:****@db/news"
    assert entries["QA_DATA_DIR"]["path"] == str(tmp_path)
    assert entries["QA_MODEL"]["path"] == str(tmp_path / "models" / settings.MODEL_NAME)
    assert entries["QA_RATE_LIMIT"] == {**entries["QA_RATE_LIMIT"], "value": None, "source": "default"}

    text = qa("config")
    assert text.exit_code == 0 and "s3cret" not in text.output
    assert re.search(r"^QA_API_TOKEN\s+environment\s+\*\*\*\*$", text.output, re.MULTILINE)
    assert re.search(r"^QA_RATE_LIMIT\s+default\s+unset \(no limit\)$", text.output, re.MULTILINE)


def test_config_names_an_unusable_value_and_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_ENGINE", "tensorflow")
    monkeypatch.setenv("QA_API_TOKEN", "  ")  # unusable secrets are not shown either
    result = qa("config")
    assert result.exit_code == 1
    assert "invalid: QA_ENGINE must be one of auto, onnx, torch" in result.output
    as_json = qa("config", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["settings"]


def test_config_markdown_is_the_readme_table() -> None:
    result = qa("config", "--markdown")
    assert result.exit_code == 0
    assert result.stdout.startswith("| variable | meaning | default |\n|---|---|---|\n")
    assert len(result.stdout.splitlines()) == 2 + len(settings.SETTINGS)


# -- qa model ---------------------------------------------------------------------------------------------


def test_model_info_describes_the_model(fake_model: None) -> None:
    text = qa("model", "info")
    assert text.exit_code == 0 and re.search(r"^\s+name: fake$", text.stdout, re.MULTILINE)
    assert json.loads(qa("model", "info", "--json").stdout) == FakeEncoder().info()


def test_model_build_says_when_the_model_is_already_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported: list[Path] = []
    monkeypatch.setattr(
        "embeddings.build.build_model", lambda target, force: SimpleNamespace(built=False, path=target)
    )
    monkeypatch.setattr("embeddings.engines.ensure_onnx_export", lambda path, force: exported.append(path))
    result = qa("model", "build", "--dir", tmp_path / "model")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"Model already built in {tmp_path / 'model'} (manifest matches the packaged weights).\n"
    )
    assert result.stdout == f"{(tmp_path / 'model').resolve()}\n" and exported == [tmp_path / "model"]


# -- qa serve and qa mcp: what fails before they start ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--port", "70000"], "70000 is not in the range 0<=x<=65535"),
        (["--idle-timeout", "0"], "'0' is not a number of seconds above 0 (QA_IDLE_TIMEOUT_S)"),
        (["--idle-timeout", "soon"], "'soon' is not a number of seconds above 0 (QA_IDLE_TIMEOUT_S)"),
        (["--bogus"], "No such option '--bogus'"),
    ],
)
def test_serve_refuses_bad_options(args: list[str], words: str) -> None:
    result = qa("serve", *args)
    assert result.exit_code == 2 and words in result.stderr


def test_serve_checks_the_idle_timeout_setting_as_its_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_IDLE_TIMEOUT_S", "soon")
    result = qa("serve")
    assert result.exit_code == 2
    assert error_line(result) == (
        "Error: Invalid value for '--idle-timeout': 'soon' is not a number of seconds above 0 "
        "(QA_IDLE_TIMEOUT_S)"
    )


def test_serve_refuses_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    """A start-up failure of the app (here an unusable QA_RATE_LIMIT) is the last line, alone: a
    real process, as uvicorn's logging and exit are part of it."""
    result = subprocess.run(
        [sys.executable, "-c", "from qa.cli import main; main()", "serve", "--port", "0"],
        env=qa_env(QA_RATE_LIMIT="lots", QA_INDEX_DIR=str(tmp_path / "index")),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: QA_RATE_LIMIT must look like 60/minute (a positive number per second, minute, hour or day), "
        "not 'lots'"
    )


def test_mcp_refuses_bad_options() -> None:
    result = qa("mcp", "--bogus")
    assert result.exit_code == 2 and "No such option '--bogus'" in result.stderr


def test_mcp_on_a_missing_index_fails_in_one_line_unless_it_may_write(
    tmp_path: Path, fake_model: None
) -> None:
    missing = tmp_path / "none"
    result = qa("mcp", "--index", missing)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: no index at {missing}. Create one: qa ingest PATH --index {missing}"
    assert not missing.exists()


# -- qa bench: its progress goes to standard error ------------------------------------------------------


def test_bench_logs_progress_to_stderr_and_figures_to_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    def run_benchmark(options):
        options.log("seeds indexed")
        return SimpleNamespace(figures={"p50_ms": 1.0}, ann_results=[], profile_text="", notes=[])

    monkeypatch.setattr("qa.bench.runner.run_benchmark", run_benchmark)
    result = qa("bench", "--json", "--no-txtai")
    assert result.exit_code == 0, result.output
    assert result.stderr == "[bench] seeds indexed\n"
    assert json.loads(result.stdout)["p50_ms"] == 1.0


# -- the real model -------------------------------------------------------------------------------------


@pytest.mark.model
def test_ingest_and_ask_with_the_real_model(
    tmp_path: Path, real_encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("qa.service.load_encoder", lambda: real_encoder)  # the session's, loaded once
    index = tmp_path / "index"
    assert qa("ingest", SEEDS, "--index", index).exit_code == 0
    result = qa("ask", BRUSSELS_QUESTION, "-k", "3", "--index", index, "--json")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["passages"][0]
    assert first["document"]["id"] == BRUSSELS
    assert "عبد الرحمن مصطفى" in first["text"] and "جيمس جيفري" in first["text"]
