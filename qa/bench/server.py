"""Serving processes under test: `qa serve`, and txtai's own API under uvicorn, on loopback.

A server is started as a child process, timed from spawn to its first correct answer (the cold
start), loaded, measured (peak resident memory from /proc), and stopped by its process id.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from qa import settings
from qa.bench.load import HttpClient, RequestFor

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def qa_serve_command(index_dir: Path, port: int) -> list[str]:
    """The installed `qa` script when present (what users run), else the same entry point."""
    script = Path(sys.executable).with_name("qa")
    prefix = [str(script)] if script.exists() else [sys.executable, "-c", "from qa.cli import main; main()"]
    return [*prefix, "serve", "--index", str(index_dir), "--host", HOST, "--port", str(port)]


def txtai_serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "txtai.api:app", "--host", HOST, "--port", str(port)]


class ServerError(RuntimeError):
    pass


class ServerProcess:
    """A server child process; use as a context manager so it is always stopped."""

    def __init__(self, command: Sequence[str], port: int, env: dict[str, str] | None = None) -> None:
        self.command = list(command)
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self._env = settings.child_environment(env)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop(), after the process)
        self._process: subprocess.Popen | None = None
        self.started_at = 0.0

    def __enter__(self) -> ServerProcess:
        self.started_at = time.perf_counter()
        self._process = subprocess.Popen(
            self.command, env=self._env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def wait_for_answer(self, request_for: RequestFor, question: str, timeout: float = 180.0) -> float:
        """Seconds from spawn until the server answers `question` with 200 (the cold start)."""
        client = HttpClient(self.url, timeout=timeout)
        deadline = self.started_at + timeout
        try:
            while time.perf_counter() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise ServerError(f"{self.command[0]} exited early:\n{self.log_tail()}")
                try:
                    status, _ = client.request(*request_for(question))
                    if status == 200:
                        return time.perf_counter() - self.started_at
                except OSError:
                    client.close()
                time.sleep(0.02)
        finally:
            client.close()
        raise ServerError(f"no answer from {self.url} within {timeout:.0f} s:\n{self.log_tail()}")

    def memory_mb(self) -> tuple[float | None, float | None]:
        """(current, peak) resident memory of the server process, from /proc (Linux)."""
        fields: dict[str, float] = {}
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    fields[name] = int(value.split()[0]) / 1024
        except OSError:
            return None, None
        return fields.get("VmRSS"), fields.get("VmHWM")

    def log_tail(self, lines: int = 20) -> str:
        self._log.seek(0)
        return "\n".join(self._log.read().decode(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            self._log.close()
            return
        # SIGINT: uvicorn shuts down gracefully (lifespan shutdown closes the index).
        for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.kill(process.pid, sig)
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        self._log.close()


def txtai_config(index_path: Path, directory: Path) -> Path:
    """The YAML that makes txtai's API serve a saved index, read-only (the `embeddings` key
    turns its search routes on; the index itself loads from `path`)."""
    config = directory / f"txtai-api-{index_path.parent.name}.yml"
    config.write_text(f"path: {index_path}\nwritable: false\nembeddings: {{}}\n", encoding="utf-8")
    return config
