"""`qa serve` as a child process on 127.0.0.1, for the soak and the fault tests.

The server picks a free port (`--port 0`) and prints its address once it accepts requests; the
process is stopped by its own id (terminate, then kill), never by name.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from qa import settings

HOST = "127.0.0.1"
_ADDRESS = re.compile(r"Serving on (http://\S+)")


def qa_command() -> list[str]:
    """The installed `qa` script beside this Python (what users run), else the same entry point."""
    script = Path(sys.executable).with_name("qa")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from qa.cli import main; main()"]


class ServeError(RuntimeError):
    """`qa serve` exited or did not start in time; the message ends with its stderr."""


class QaServe:
    """One `qa serve --index DIR` process; `start()` returns its URL. Logs go to `log_dir`."""

    def __init__(self, index_dir: Path, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.index_dir = index_dir
        self.env = settings.child_environment(env, drop=("QA_INDEX_DIR",))  # --index says which index
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._starts = 0

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"serve-{self._starts}.out"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"serve-{self._starts}.err"

    def start(self, timeout_s: float = 600.0) -> str:
        """Start the server and wait until it prints its address (the model and index loaded)."""
        self._starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = [*qa_command(), "serve", "--index", str(self.index_dir), "--host", HOST, "--port", "0"]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(command, env=self.env, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServeError(f"qa serve exited with {self.process.returncode}:\n{self.stderr()[-3000:]}")
            printed = _ADDRESS.search(self.stdout_path.read_text(errors="replace"))
            if printed:
                self.url = printed.group(1)
                return self.url
            time.sleep(0.1)
        self.stop()
        raise ServeError(f"qa serve did not start within {timeout_s:.0f} s:\n{self.stderr()[-3000:]}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def status(self, field: str) -> str:
        """A field of the server's /proc status (Linux), e.g. VmRSS or Threads."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return value.strip()
        raise ServeError(f"no {field} in /proc/{self.pid}/status")

    def rss_bytes(self) -> int:
        """Resident memory of the server process now."""
        return int(self.status("VmRSS").split()[0]) * 1024

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> int:
        """Send `sig` to the server and wait for it to end; returns its exit status."""
        assert self.process is not None, "not started"
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> QaServe:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
