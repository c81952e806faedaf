"""`qa config`: every setting's effective value and where it came from, secrets masked."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from embeddings.errors import ModelError
from qa import settings
from qa.errors import QAError
from qa.settings import Setting


def _plain(value: Any) -> Any:
    """A value as JSON has it: paths and rate limits as text, tuples as lists."""
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _path(setting: Setting, value: Any) -> str | None:
    """The folder a setting points at from here, absolute: a relative index directory means one
    folder per working directory, and an unset QA_MODEL the built-in model's directory."""
    if setting is settings.INDEX_DIR:
        return None if "://" in value else str(Path(value).absolute())
    if setting is settings.MODEL:
        local = Path(value).expanduser() if value else settings.default_model_dir()
        return str(local.absolute()) if value is None or local.exists() else None
    return str(value) if isinstance(value, Path) else None


def describe(setting: Setting) -> dict[str, Any]:
    """One setting as `qa config` shows it: a secret never appears, even in an error message."""
    entry: dict[str, Any] = {"name": setting.name, "source": setting.source()}
    try:
        parsed = setting.get()
    except (QAError, ModelError, ValueError) as exc:
        entry.update(value=None, error=str(exc) if setting.secret is None else "unusable value")
    else:
        value = _plain(parsed)
        if setting.secret is not None and isinstance(value, str):
            value = setting.shown(value)
        entry["value"] = value
        path = _path(setting, parsed)
        if path is not None:
            entry["path"] = path
    entry.update(default=setting.default_doc, help=setting.help)
    return entry


def _shown(entry: dict[str, Any]) -> str:
    if "error" in entry:
        return f"invalid: {entry['error']}"
    value = entry.get("path", entry["value"])
    if value is None or value == []:
        return entry["default"].replace("`", "")
    return ", ".join(value) if isinstance(value, list) else str(value)


def markdown_table() -> str:
    """The README's settings table (section "Configuration"), from the declarations."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    rows += [f"| `{s.name}` | {s.help} | {s.default_doc} |" for s in settings.SETTINGS]
    return "\n".join(rows) + "\n"


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option("--markdown", is_flag=True, help="Print the README's table of settings (Markdown).")
def config(as_json: bool, markdown: bool) -> None:
    """Show every setting: its effective value and whether it came from the environment or the
    default. QA_API_TOKEN and passwords in index URLs are masked. Exits 1 if a value is unusable.

    \b
    Examples:
      qa config
      qa config --json
    """
    if markdown:
        click.echo(markdown_table(), nl=False)
        return
    entries = [describe(setting) for setting in settings.SETTINGS]
    if as_json:
        click.echo(json.dumps({"settings": entries}, ensure_ascii=False, indent=2))
    else:
        width = max(len(entry["name"]) for entry in entries)
        for entry in entries:
            click.echo(f"{entry['name']:<{width}}  {entry['source']:<11}  {_shown(entry)}")
    if any("error" in entry for entry in entries):
        sys.exit(1)
