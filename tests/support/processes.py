"""Start and stop real processes for tests: by their own pid, never by name."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "postmeister"), *args], env=env, capture_output=True, text=True, timeout=60
    )


class CliWorker:
    """`postmeister` commands run in one long-lived process (`tests/support/cli_worker.py`):
    the same entry point, exit codes, stdout and stderr as `cli`, without paying the
    application's import time for every command. For setup and for the many verbs of one
    test; the process-level behaviour stays covered by `cli`."""

    def __init__(self) -> None:
        self._start()

    def _start(self) -> None:
        answers, answers_w = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-P", str(Path(__file__).with_name("cli_worker.py")), str(answers_w)],
            stdin=subprocess.PIPE,
            pass_fds=(answers_w,),
            text=True,
        )
        os.close(answers_w)
        self._answers = os.fdopen(answers, encoding="utf-8")

    def __call__(
        self, *args: str, env: dict[str, str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        if self._process.poll() is not None:
            self._answers.close()
            self._start()  # a command that timed out took the previous worker with it
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"args": list(args), "env": env}) + "\n")
        self._process.stdin.flush()
        ready, _, _ = select.select([self._answers], [], [], timeout)
        if not ready:
            stop(self._process)
            raise subprocess.TimeoutExpired(["postmeister", *args], timeout)
        line = self._answers.readline()
        if not line:
            raise RuntimeError(f"the CLI worker exited with {self._process.wait(timeout=60)}")
        answer = json.loads(line)
        return subprocess.CompletedProcess(
            ["postmeister", *args], answer["returncode"], answer["stdout"], answer["stderr"]
        )

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        finally:
            stop(self._process)
            self._answers.close()
