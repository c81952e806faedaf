"""Settings: declared once in qa/settings.py, read from the environment there only, documented in the
README from the declarations, shown by `qa config` with secrets masked, and defaults that do not
depend on the working directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa import settings
from qa.cli import main
from qa.config_cli import markdown_table
from qa.errors import ConfigurationError
from qa.reliability.serve import qa_command

REPO = Path(__file__).resolve().parent.parent
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
        ("postgresql://qa@db/news", "postgresql://qa@db/news"),
        ("/srv/index", "/srv/index"),
    ],
)
def test_passwords_in_urls_are_masked(url, shown):
    assert settings.mask_url(url) == shown


def test_qa_config_shows_values_and_sources_with_secrets_masked(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_API_TOKEN", "tok-s3cret")
    monkeypatch.setenv("QA_INDEX_DIR", "postgresql://qa:pw-s3cret@db/news")
    monkeypatch.setenv("QA_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("QA_RATE_LIMIT", raising=False)
    result = CliRunner().invoke(main, ["config", "--json"])
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    entries = {entry["name"]: entry for entry in json.loads(result.output)["settings"]}
    assert list(entries) == [setting.name for setting in settings.SETTINGS]
    assert entries["QA_API_TOKEN"] == {**entries["QA_API_TOKEN"], "value": "****", "source": "environment"}
    assert entries["QA_INDEX_DIR"]["value"] == "postgresql://qa:****@db/news"
    assert entries["QA_DATA_DIR"]["path"] == str(tmp_path)
    assert entries["QA_MODEL"]["path"] == str(tmp_path / "models" / settings.MODEL_NAME)
    assert entries["QA_RATE_LIMIT"] == {**entries["QA_RATE_LIMIT"], "value": None, "source": "default"}

    text = CliRunner().invoke(main, ["config"])
    assert text.exit_code == 0 and "s3cret" not in text.output
    assert re.search(r"^QA_API_TOKEN\s+environment\s+\*\*\*\*$", text.output, re.MULTILINE)


def test_qa_config_names_an_unusable_value_and_fails(monkeypatch):
    monkeypatch.setenv("QA_ENGINE", "tensorflow")
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 1
    assert "invalid: QA_ENGINE must be one of auto, onnx, torch" in result.output


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
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("QA_INDEX_DIR", None)

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
