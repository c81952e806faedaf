"""Every setting of the project, declared once: name, default, one line of help, and how its value
is parsed and checked.

This is the only module that reads the environment (`os.environ`): the rest asks a `Setting` for
its value, and code that starts child processes takes their environment from `child_environment`.
Values are read each time they are asked for, never frozen at import, so a test (or a server's
start-up) sees the environment as it is then. The README's settings table is generated from
`SETTINGS` (`qa config --markdown`) and tests/test_settings.py checks that they agree.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Literal, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from embeddings.errors import ModelError
from qa.errors import ConfigurationError

T = TypeVar("T")
Source = Literal["environment", "default"]

APP_NAME = "qa"
REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "multilingual-e5-small-q4"
MASK = "****"

ENGINES = ("auto", "onnx", "torch")
ONNX_VARIANTS = ("fp32", "int8")
PRECISIONS = ("auto", "float32", "bfloat16")
VECTOR_INDEX_POLICIES = ("auto", "flat", "hnsw", "ivf")
# Where exact search stops being cheap beside the question's latency budget (figures:
# docs/benchmarks.md, "Figures behind the code's constants").
AUTO_SWITCH_AT = 20_000
# Documents sent over HTTP are encoded while the client waits: with the real model on two cores
# (about 15 passages a second), 2 MiB of Arabic news is already minutes of CPU. Larger files
# belong to `qa ingest`, which shows progress and ties up no HTTP request.
DEFAULT_MAX_API_DOCUMENT_BYTES = 2 * 1024 * 1024
DEFAULT_QUERY_BATCH = 32
DEFAULT_IDLE_TIMEOUT_S = 5.0
# Relative to the working directory, unlike the model: an index belongs to a project folder (and
# tests, scripts and `make run` each keep their own), while one model serves them all.
DEFAULT_INDEX = "data/index"
INDEX_DIR_SHOWN = f"$QA_INDEX_DIR, else {DEFAULT_INDEX} in the working directory"


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable. Unset and empty are the same: the default applies."""

    name: str
    help: str  # one line of Markdown: the README table and `qa config`
    default_doc: str  # the default as the README states it (Markdown)
    parse: Callable[[str], T]  # the text of a set variable to its value; raises when it is unusable
    default: Callable[[], T]  # the value when unset
    secret: Callable[[str], str] | None = None  # hides what must not be printed

    def raw(self) -> str | None:
        return os.environ.get(self.name) or None

    def source(self) -> Source:
        return "default" if self.raw() is None else "environment"

    def get(self, override: str | None = None) -> T:
        """The value: `override` (an explicit argument) when given, else the environment's, else the
        default. Both go through the same parsing and checks."""
        text = override or self.raw()
        return self.default() if text is None else self.parse(text)

    def shown(self, text: str) -> str:
        return self.secret(text) if self.secret else text


# --- parsing -------------------------------------------------------------------------------------


def _choice(name: str, choices: tuple[str, ...], error: type[Exception] = ModelError) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise error(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return value

    return parse


def _digits_or(default: Callable[[], T]) -> Callable[[str], int | T]:
    """A positive count; anything but digits falls back to the default (the rule so far)."""

    def parse(text: str) -> int | T:
        value = text.strip()
        return max(1, int(value)) if value.isdigit() else default()

    return parse


def _effort(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return max(1, int(text))
        except ValueError:
            raise ConfigurationError(f"{name} must be a whole number, not {text!r}") from None

    return parse


def _vector_index(text: str) -> str:
    value = text.strip().lower()
    if value not in VECTOR_INDEX_POLICIES:
        known = ", ".join(VECTOR_INDEX_POLICIES)
        raise ValueError(f"unknown vector index {value!r}; expected one of {known}")
    return value


def _switch_at(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"the vector index switch size must be a number, not {text!r}") from None


def _absolute(text: str) -> Path:
    # Resolved once, when read: a relative setting means "from where the command was started".
    return Path(text).expanduser().absolute()


def _default_data_dir() -> Path:
    """One directory per user, whatever the working directory, shared by every checkout and
    virtual environment: the model is built once (~40 s, 250 MB) and found from anywhere."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def _token(text: str) -> str | None:
    return text.strip() or None


def _origins(text: str) -> tuple[str, ...]:
    return tuple(origin.strip() for origin in text.split(",") if origin.strip())


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)
Period = Literal["second", "minute", "hour", "day"]


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` per `period` from one client address."""

    requests: int
    period: Period

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """'60/minute' (also second, hour, day); ConfigurationError for anything else."""
        match = _RATE.match(text)
        if not match or int(match.group(1)) < 1:
            raise ConfigurationError(
                f"QA_RATE_LIMIT must look like 60/minute (a positive number per second, minute, hour "
                f"or day), not {text!r}"
            )
        return cls(int(match.group(1)), cast(Period, match.group(2).lower()))

    def __str__(self) -> str:
        return f"{self.requests}/{self.period}"


def _rate_limit(text: str) -> RateLimit | None:
    return RateLimit.parse(text.strip()) if text.strip() else None


def _document_limit(text: str) -> int:
    from qa.documents import MAX_DOCUMENT_BYTES

    raw = text.strip()
    if not raw:
        return DEFAULT_MAX_API_DOCUMENT_BYTES
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_DOCUMENT_BYTES:
        raise ConfigurationError(
            f"QA_MAX_API_DOCUMENT_BYTES must be a number of bytes from 1 to {MAX_DOCUMENT_BYTES}, not {raw!r}"
        )
    return limit


def mask_secret(text: str) -> str:
    return MASK if text.strip() else text


def mask_url(text: str) -> str:
    """A URL with its password (in the user part, or a parameter such as `password=` or
    `sslpassword=`) replaced by ****."""
    if "://" not in text:
        return text
    parts = urlsplit(text)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            user = f"{user.split(':', 1)[0]}:{MASK}"
        netloc = f"{user}@{host}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key.endswith("password") for key, _ in pairs):
        query = urlencode([(k, MASK if k.endswith("password") else v) for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _none() -> None:
    return None


def seconds_above_zero(text: object, name: str) -> float:
    """A positive, finite number of seconds, or ConfigurationError naming the variable (it is
    usually set there rather than as an option)."""
    try:
        seconds = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigurationError(f"{text!r} is not a number of seconds above 0 ({name})")
    return seconds


# --- the settings --------------------------------------------------------------------------------

DATA_DIR: Setting[Path] = Setting(
    "QA_DATA_DIR",
    "where the built model, the evaluation's embedding cache (`cache/`) and the benchmarks' indexes "
    "(`bench/`) live; not the index (see `QA_INDEX_DIR`)",
    "the user's data directory: `~/.local/share/qa` on Linux",
    _absolute,
    _default_data_dir,
)
MODEL: Setting[str | None] = Setting(
    "QA_MODEL",
    "a sentence-transformers model directory (or hub id) to use instead of the built-in one",
    "built-in model, in `QA_DATA_DIR/models/`",
    lambda text: text,
    _none,
)
INDEX_DIR: Setting[str] = Setting(
    "QA_INDEX_DIR",
    "the index used when `--index` is not given: a directory (a relative one is relative to the "
    "working directory), or `postgresql://user:password@host:port/db[?schema=name]`",
    f"`{DEFAULT_INDEX}` in the working directory",
    lambda text: text,
    lambda: DEFAULT_INDEX,
    mask_url,
)
INDEX_READ_URL: Setting[str | None] = Setting(
    "QA_INDEX_READ_URL",
    "a streaming replica of the PostgreSQL index for `qa serve` to read from (writes still go to the "
    "index URL)",
    "unset",
    lambda text: text,
    _none,
    mask_url,
)
API_TOKEN: Setting[str | None] = Setting(
    "QA_API_TOKEN",
    "bearer token that `qa serve` requires for `POST`/`DELETE /api/documents` and for the MCP write "
    "tools at `/mcp`; unset or empty: writes answer 403 (and MCP lists no write tools)",
    "unset",
    _token,
    _none,
    mask_secret,
)
CORS_ORIGINS: Setting[tuple[str, ...]] = Setting(
    "QA_CORS_ORIGINS",
    "comma-separated origins allowed to call the API from a browser (e.g. `https://chat.example.com`); "
    "`*` allows any",
    "unset (no CORS)",
    _origins,
    tuple,
)
RATE_LIMIT: Setting[RateLimit | None] = Setting(
    "QA_RATE_LIMIT",
    "requests per client address, e.g. `60/minute` (`second`, `minute`, `hour`, `day`); over it: 429. "
    "`/health` is never limited",
    "unset (no limit)",
    _rate_limit,
    _none,
)
MAX_API_DOCUMENT_BYTES: Setting[int] = Setting(
    "QA_MAX_API_DOCUMENT_BYTES",
    "the largest document `POST /api/documents` accepts, in bytes (at most 20 MiB); larger ones: 413, "
    "use `qa ingest`",
    f"`{DEFAULT_MAX_API_DOCUMENT_BYTES}` (2 MiB)",
    _document_limit,
    lambda: DEFAULT_MAX_API_DOCUMENT_BYTES,
)
IDLE_TIMEOUT_S: Setting[float] = Setting(
    "QA_IDLE_TIMEOUT_S",
    "seconds `qa serve` lets a connection take to send a whole request head (from opening, or from its "
    "last response) before closing it; put a reverse proxy in front on the internet",
    f"`{DEFAULT_IDLE_TIMEOUT_S:g}` (uvicorn's keep-alive default)",
    lambda text: seconds_above_zero(text, "QA_IDLE_TIMEOUT_S"),
    lambda: DEFAULT_IDLE_TIMEOUT_S,
)
ENGINE: Setting[str] = Setting(
    "QA_ENGINE",
    "`auto`, `onnx` or `torch`: what runs the model. `auto` runs a model directory with an ONNX export "
    "(the built-in model always has one: `qa model build` writes it) on ONNX Runtime, anything else "
    "on torch; `torch` is the fallback for the built-in model",
    "`auto`",
    _choice("QA_ENGINE", ENGINES),
    lambda: "auto",
)
ONNX_VARIANT: Setting[str] = Setting(
    "QA_ONNX_VARIANT",
    "`fp32` or `int8` (dynamically quantized weights, faster, vectors within a cosine of ~0.995; see "
    "docs/evaluation.md)",
    "`fp32`",
    _choice("QA_ONNX_VARIANT", ONNX_VARIANTS),
    lambda: "fp32",
)
MODEL_PRECISION: Setting[str] = Setting(
    "QA_MODEL_PRECISION",
    "`auto`, `float32` or `bfloat16`: the torch engine's number format; `auto` takes bfloat16 where "
    "the CPU has native bfloat16 instructions (AVX512-BF16, AMX)",
    "`auto`",
    _choice("QA_MODEL_PRECISION", PRECISIONS),
    lambda: "auto",
)
QUERY_BATCH: Setting[int] = Setting(
    "QA_QUERY_BATCH",
    "the most questions one forward pass of the model takes when requests arrive together; `1` turns "
    "micro-batching off",
    f"`{DEFAULT_QUERY_BATCH}`",
    _digits_or(lambda: DEFAULT_QUERY_BATCH),
    lambda: DEFAULT_QUERY_BATCH,
)
TORCH_THREADS: Setting[int | None] = Setting(
    "QA_TORCH_THREADS",
    "threads one forward pass of the torch engine may use (the ONNX engine takes one per CPU this "
    "process may run on, and its threads sleep rather than spin between questions); `1` suits a "
    "machine shared with other CPU-heavy work",
    "one per core",
    _digits_or(_none),
    _none,
)
VECTOR_INDEX: Setting[str | None] = Setting(
    "QA_VECTOR_INDEX",
    "`auto`, `flat`, `hnsw` or `ivf`: the vector index kind (recorded in the index and kept)",
    "`auto`",
    _vector_index,
    _none,  # what the index recorded, else auto
)
VECTOR_INDEX_SWITCH_AT: Setting[int | None] = Setting(
    "QA_VECTOR_INDEX_SWITCH_AT",
    "corpus size (passages) at which `auto` leaves exact search for HNSW (recorded in the index and kept)",
    f"`{AUTO_SWITCH_AT}`",
    _switch_at,
    _none,  # what the index recorded, else AUTO_SWITCH_AT
)
HNSW_EF_SEARCH: Setting[int | None] = Setting(
    "QA_HNSW_EF_SEARCH",
    "search effort of the HNSW indexes (more: better recall, slower)",
    "local: 1024 at a million passages, scaled by √(size / 1M) within 128-2048; PostgreSQL: 128",
    _effort("QA_HNSW_EF_SEARCH"),
    _none,  # each backend's own default
)
IVF_PROBES: Setting[int | None] = Setting(
    "QA_IVF_PROBES",
    "lists an IVF index searches (more: better recall, slower)",
    "a twelfth of the lists",
    _effort("QA_IVF_PROBES"),
    _none,
)
EVAL_DATA: Setting[Path] = Setting(
    "QA_EVAL_DATA",
    "the evaluation sets (`xquad/`, `arcd/`, `tydiqa-goldp-ar/`) for `qa eval` and `qa bench`",
    "`../shared/evaldata` beside the repository",
    _absolute,
    lambda: REPO_ROOT.parent / "shared" / "evaldata",
)

SETTINGS: tuple[Setting, ...] = (
    DATA_DIR,
    MODEL,
    INDEX_DIR,
    INDEX_READ_URL,
    API_TOKEN,
    CORS_ORIGINS,
    RATE_LIMIT,
    MAX_API_DOCUMENT_BYTES,
    IDLE_TIMEOUT_S,
    ENGINE,
    ONNX_VARIANT,
    MODEL_PRECISION,
    QUERY_BATCH,
    TORCH_THREADS,
    VECTOR_INDEX,
    VECTOR_INDEX_SWITCH_AT,
    HNSW_EF_SEARCH,
    IVF_PROBES,
    EVAL_DATA,
)
BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}


# --- derived paths -------------------------------------------------------------------------------


def data_dir() -> Path:
    """QA_DATA_DIR (absolute), else the per-user data directory."""
    return DATA_DIR.get()


def default_model_dir() -> Path:
    return data_dir() / "models" / MODEL_NAME


def cache_dir() -> Path:
    return data_dir() / "cache"


def bench_dir() -> Path:
    return data_dir() / "bench"


# --- child processes -----------------------------------------------------------------------------


def child_environment(
    extra: Mapping[str, str] | None = None,
    *,
    drop: Iterable[str] = (),
    drop_prefix: str | None = None,
    python_path: str | None = None,
) -> dict[str, str]:
    """The environment for a child process: this one's, with `extra` on top, the names in `drop`
    and those starting with `drop_prefix` removed, and `python_path` put first on PYTHONPATH."""
    env = {**os.environ, **(extra or {})}
    for name in drop:
        env.pop(name, None)
    if drop_prefix:
        env = {key: value for key, value in env.items() if not key.startswith(drop_prefix)}
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [python_path, env.get("PYTHONPATH")]))
    return env
