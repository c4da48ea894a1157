"""The package installs offline, from a copy of the source, into a venv with
no network and no build dependencies beyond Debian's setuptools, and the
installed copy talks to the server."""

import os
import shutil
import subprocess
import sys

import pytest

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_offline_install_in_a_venv(tmp_path, server):
    # Debian's interpreter, where python3-setuptools and python3-pip live.
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    probe = subprocess.run([python, "-c", "import setuptools, pip"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"{python} has no pip or setuptools (python3-pip, python3-setuptools)")
    # A copy: the build writes build/ and *.egg-info next to pyproject.toml.
    src = tmp_path / "src"
    shutil.copytree(SOURCE, src, ignore=shutil.ignore_patterns(
        "tests", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True)
    vpython = str(venv / "bin" / "python")
    env = dict(os.environ, PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    subprocess.run([vpython, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--no-build-isolation", str(src)], check=True, env=env, cwd=str(tmp_path))
    script = ("import sandbox_journal, sys\n"
              "c = sandbox_journal.Client(sys.argv[1])\n"
              "print(sandbox_journal.__file__)\n"
              "print(c.health()['status'])\n")
    out = subprocess.run([vpython, "-c", script, server.url], check=True, env=env,
                         cwd=str(tmp_path), capture_output=True, text=True).stdout.split()
    assert out[0].startswith(str(venv)), out
    assert out[1] == "ok"
    assert os.path.exists(os.path.join(os.path.dirname(out[0]), "py.typed"))
