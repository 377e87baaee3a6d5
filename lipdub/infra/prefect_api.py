"""A local Prefect API for a CLI run, started early so it boots while lipdub loads.

With no API configured, Prefect itself would start a temporary server the first time
a flow runs, importing the whole server into this process first and only then
waiting for it: seconds on every command. Here the same server app (Prefect's own
ephemeral-mode server, UI off) starts as a subprocess at the top of the command and
boots on the other core while lipdub imports and loads its models. With an API
configured (a `prefect server` or Prefect Cloud, the production setup) nothing starts.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPrefectAPI:
    def __init__(self) -> None:
        from prefect.settings import get_current_settings

        self.url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        if get_current_settings().api.url:
            return
        port = _free_port()
        env = os.environ | {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        args = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"]
        self._proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}/api"
        atexit.register(self.stop)

    def wait(self, timeout_s: float = 120.0) -> None:
        """Block until the API answers its health check."""
        if self._proc is None:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"local Prefect API exited with status {self._proc.returncode}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            time.sleep(0.1)
        raise RuntimeError("local Prefect API did not start in time")

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Point Prefect at this API for the duration (no-op when one was configured)."""
        if self.url is None:
            yield
            return
        from prefect.settings import PREFECT_API_URL, temporary_settings

        self.wait()
        with temporary_settings(updates={PREFECT_API_URL: self.url}):
            yield

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
