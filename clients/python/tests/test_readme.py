"""The README's example, run as written (only the URL changed), follows a
session across a kill -9 and a restart of the server."""

import os
import re
import subprocess
import sys
import time

from sandbox_journal import Client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_example(path=os.path.join(ROOT, "README.md"),
                   heading="## Follow a session across a server restart"):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    section = text.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_project_readme_shows_the_same_lines():
    project = os.path.join(ROOT, "..", "..", "README.md")
    assert readme_example(project, "## Python client") == readme_example()


def test_readme_example_survives_a_restart(server):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 10
    code = code.replace("http://127.0.0.1:2468", server.url)
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        c = Client(server.url)
        deadline = time.monotonic() + 15
        while not any(r["sessionId"] == "demo" for r in c.list_sessions()["sessions"]):
            assert time.monotonic() < deadline and proc.poll() is None, "the script did not start"
            time.sleep(0.05)
        time.sleep(0.2)  # let it read a few events
        server.restart(kill=True)
        c.post_message("demo", "echo after the restart")
        time.sleep(0.2)
        c.terminate("demo")
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = [ln.split() for ln in out.splitlines()]
    assert [int(f[0]) for f in lines] == list(range(1, len(lines) + 1))
    assert lines[-1][1] == "session.ended"
    stored = c.get_events("demo")["events"]
    assert [(e["sequence"], e["type"]) for e in stored] == [(int(a), b) for a, b in lines]
