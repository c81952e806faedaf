"""Settings: declared once in qa/settings.py, read from the environment there only, documented in the
README from the declarations, parsed with their rules, and defaults that do not depend on the
working directory. `qa config` itself: tests/test_cli.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qa import settings
from qa.api.settings import DEFAULT_MAX_API_DOCUMENT_BYTES, ApiSettings
from qa.config_cli import markdown_table
from qa.errors import ConfigurationError
from qa.reliability.serve import qa_command
from tests.helpers import REPO, qa_env

ENVIRONMENT_READ = re.compile(r"os\.environ|os\.getenv")


def test_only_the_settings_module_reads_the_environment():
    readers = [
        path.relative_to(REPO).as_posix()
        for package in ("qa", "embeddings")
        for path in sorted((REPO / package).rglob("*.py"))
        if ENVIRONMENT_READ.search(path.read_text(encoding="utf-8"))
    ]
    assert readers == ["qa/settings.py"]


def test_the_readme_table_is_the_declared_settings():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration\n", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|")) + "\n"
    assert table == markdown_table(), "regenerate the README table: qa config --markdown"
    documented = re.findall(r"^\| `(QA_[A-Z_]+)` \|", table, re.MULTILINE)
    assert documented == [setting.name for setting in settings.SETTINGS]
    assert len(set(documented)) == len(documented)


def test_every_setting_named_in_the_code_is_declared():
    named = {
        name
        for package in ("qa", "embeddings")
        for path in (REPO / package).rglob("*.py")
        for name in re.findall(r"\bQA_[A-Z][A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8"))
    }
    assert named <= set(settings.BY_NAME)


def test_the_data_directory_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("QA_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    here = settings.default_model_dir()
    monkeypatch.chdir(REPO)
    assert settings.default_model_dir() == here and here.is_absolute()
    assert not here.is_relative_to(tmp_path) and not here.is_relative_to(REPO)
    from embeddings.cache import default_cache_path
    from qa.bench.indexes import cache_root

    assert default_cache_path().parent == settings.data_dir() / "cache"
    assert cache_root() == settings.data_dir() / "bench"


def test_a_relative_data_directory_is_made_absolute_when_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QA_DATA_DIR", "somewhere")
    assert settings.default_model_dir() == tmp_path / "somewhere" / "models" / settings.MODEL_NAME


def test_settings_are_read_when_asked_not_at_import(monkeypatch):
    monkeypatch.setenv("QA_QUERY_BATCH", "4")
    assert settings.QUERY_BATCH.get() == 4 and settings.QUERY_BATCH.source() == "environment"
    monkeypatch.setenv("QA_QUERY_BATCH", "")  # empty is unset
    assert settings.QUERY_BATCH.get() == 32 and settings.QUERY_BATCH.source() == "default"


def test_parsing_keeps_its_rules_and_messages(monkeypatch):
    monkeypatch.setenv("QA_CORS_ORIGINS", " https://a.example, ,https://b.example ")
    assert settings.CORS_ORIGINS.get() == ("https://a.example", "https://b.example")
    monkeypatch.setenv("QA_TORCH_THREADS", "many")  # not a count: the default, as before
    assert settings.TORCH_THREADS.get() is None
    monkeypatch.setenv("QA_HNSW_EF_SEARCH", "lots")
    with pytest.raises(ConfigurationError, match="QA_HNSW_EF_SEARCH must be a whole number, not 'lots'"):
        settings.HNSW_EF_SEARCH.get()
    monkeypatch.setenv("QA_RATE_LIMIT", "fast")
    with pytest.raises(ConfigurationError, match="QA_RATE_LIMIT must look like 60/minute"):
        settings.RATE_LIMIT.get()
    assert settings.ENGINE.get(" TORCH ") == "torch"  # an explicit argument goes through the same check


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://qa:s3cret@db:5432/news?schema=a", "postgresql://qa:****@db:5432/news?schema=a"),
        ("postgresql://db/news?password=s3cret&schema=a", "postgresql://db/news?password=****&schema=a"),
        ("postgresql://db/news?sslpassword=key-pass", "postgresql://db/news?sslpassword=****"),
        ("postgresql://qa@db/news", "postgresql://qa@db/news"),
        ("/srv/index", "/srv/index"),
    ],
)
def test_passwords_in_urls_are_masked(url, shown):
    assert settings.mask_url(url) == shown


def test_the_api_settings_come_from_the_environment(monkeypatch):
    assert ApiSettings.from_env() == ApiSettings(None, (), None, DEFAULT_MAX_API_DOCUMENT_BYTES)
    monkeypatch.setenv("QA_API_TOKEN", " s3cret ")
    monkeypatch.setenv("QA_CORS_ORIGINS", "https://a.example, https://b.example,")
    monkeypatch.setenv("QA_RATE_LIMIT", "60/minute")
    monkeypatch.setenv("QA_MAX_API_DOCUMENT_BYTES", "123456")
    assert ApiSettings.from_env() == ApiSettings(
        "s3cret", ("https://a.example", "https://b.example"), settings.RateLimit(60, "minute"), 123456
    )
    monkeypatch.setenv("QA_API_TOKEN", "")  # empty is unset
    assert ApiSettings.from_env().api_token is None


def test_children_get_the_environment_from_the_settings_module(monkeypatch):
    monkeypatch.setenv("PGHOST", "elsewhere")
    monkeypatch.setenv("QA_INDEX_DIR", "/srv/index")
    monkeypatch.setenv("PYTHONPATH", "/old")
    env = settings.child_environment(
        {"QA_API_TOKEN": "t"}, drop=("QA_INDEX_DIR",), drop_prefix="PG", python_path="/new"
    )
    assert env["QA_API_TOKEN"] == "t" and "QA_INDEX_DIR" not in env and "PGHOST" not in env
    assert env["PYTHONPATH"] == os.pathsep.join(["/new", "/old"])


@pytest.mark.model
def test_qa_run_from_any_folder_uses_the_one_built_model_and_builds_nothing(real_encoder, tmp_path):
    """`qa ingest` and `qa ask --index DIR` started in an empty folder: no data/ appears there, the
    model the test session loaded is the one used, and it is not rebuilt."""
    model_dir = real_encoder.directory
    manifest = (model_dir / "qa_model_manifest.json").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "news.txt").write_text("The ceasefire in Idlib was agreed in Moscow.", encoding="utf-8")
    index_dir = tmp_path / "index"
    env = qa_env()

    def qa(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*qa_command(), *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert "Building" not in done.stderr and "Exporting" not in done.stderr
        return done

    qa("ingest", str(tmp_path / "news.txt"), "--index", str(index_dir))
    asked = qa("ask", "where was the ceasefire agreed", "--index", str(index_dir), "--json")
    answer = json.loads(asked.stdout)
    assert answer["passages"][0]["document"]["id"] == "news"
    assert list(elsewhere.iterdir()) == []  # no data/ (no model, no index) in the working directory
    recorded = json.loads((index_dir / "manifest.json").read_text())["model"]
    assert recorded["name"] == real_encoder.name == str(model_dir) and Path(recorded["name"]).is_absolute()
    assert (model_dir / "qa_model_manifest.json").read_text() == manifest  # not rebuilt


# Every setting set to something that breaks a test that reads it: the developer's shell at its worst.
HOSTILE = {
    "QA_DATA_DIR": "/nonexistent/qa-data",
    "QA_MODEL": "/nonexistent/model",
    "QA_INDEX_DIR": "/nonexistent/index",
    "QA_INDEX_READ_URL": "postgresql://nobody@127.0.0.1:1/none",
    "QA_API_TOKEN": "x",
    "QA_CORS_ORIGINS": "http://evil.example",
    "QA_RATE_LIMIT": "1/minute",
    "QA_MAX_API_DOCUMENT_BYTES": "1",
    "QA_IDLE_TIMEOUT_S": "0.1",
    "QA_ENGINE": "torch",
    "QA_ONNX_VARIANT": "int8",
    "QA_MODEL_PRECISION": "float32",
    "QA_QUERY_BATCH": "1",
    "QA_TORCH_THREADS": "1",
    "QA_VECTOR_INDEX": "ivf",
    "QA_VECTOR_INDEX_SWITCH_AT": "1",
    "QA_HNSW_EF_SEARCH": "1",
    "QA_IVF_PROBES": "1",
    "QA_EVAL_DATA": "/nonexistent/evaldata",
}
# Tests that fail when a setting leaks into them: defaults, rate limit, CORS, the CLI's index and model.
SENSITIVE = [
    "tests/test_settings.py::test_the_api_settings_come_from_the_environment",
    "tests/test_security.py::test_there_is_no_rate_limit_by_default",
    "tests/test_security.py::test_cors_is_off_by_default",
    "tests/test_cli.py::test_config_shows_values_and_sources_with_secrets_masked",
    "tests/test_cli.py::test_ingest_takes_files_folders_and_jsonl",
    "tests/test_cli.py::test_ask_json_is_the_api_shape",
    "tests/test_limits.py::test_a_ten_megabyte_document_is_413_and_points_to_qa_ingest",
]


def test_the_tests_ignore_the_settings_of_the_shell_they_run_in(tmp_path):
    """conftest.py clears every QA_* variable: a few tests that read settings pass with all of them
    set to hostile values (the README, "Tests")."""
    assert set(HOSTILE) == {setting.name for setting in settings.SETTINGS}, "give the new setting a value"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'run'}",
            *SENSITIVE,
        ],
        env=qa_env(**HOSTILE),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"{len(SENSITIVE)} passed" in done.stdout
