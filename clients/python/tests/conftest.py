"""Fixtures: the real sandbox-journal binary (SJ_BINARY, as the C integration
tests get it) on 127.0.0.1 with a fresh data dir, and a way to kill -9 it
and start it again on the same port."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the package from this tree, not an installed one

READY = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def _binary():
    path = os.environ.get("SJ_BINARY")
    if not path:
        guess = os.path.join(HERE, "..", "..", "..", "build", "sandbox-journal")
        if os.path.exists(guess):
            return os.path.abspath(guess)
        pytest.fail("SJ_BINARY is not set (the sandbox-journal binary to test against)")
    return path


class Server:
    def __init__(self, data_dir, extra=()):
        self.binary = _binary()
        self.data_dir = data_dir
        self.extra = list(extra)
        self.port = 0
        self.proc = None
        self.output = []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        args = [self.binary, "server", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", self.data_dir, "--mock-delay-ms", "2"]
        if "--token" not in self.extra:
            args.append("--no-token")
        self.proc = subprocess.Popen(args + self.extra, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode("utf-8", "replace")
            if not line:
                raise RuntimeError("server exited before it was ready:\n" + "".join(self.output))
            self.output.append(line)
            m = READY.search(line)
            if m:
                self.port = int(m.group(1))
                # Keep reading its output so that the pipe never fills up.
                threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
                return self
        raise RuntimeError("server not ready within 20 s")

    def _drain(self, proc):
        for line in proc.stdout:
            self.output.append(line.decode("utf-8", "replace"))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode if self.proc else 0

    def restart(self, kill=False):
        """Stops (SIGTERM, or kill -9) and starts again on the same port."""
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start()


@pytest.fixture
def make_server():
    servers = []
    base = os.environ.get("SJ_TEST_TMPDIR") or None
    if base:
        os.makedirs(base, exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix="sj-py-", dir=base)

    def make(*extra):
        s = Server(os.path.join(tmp.name, f"d{len(servers)}"), extra)
        servers.append(s)
        return s.start()

    yield make
    for s in servers:
        s.stop()
    tmp.cleanup()


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def client(server):
    from sandbox_journal import Client
    return Client(server.url, timeout=10)
