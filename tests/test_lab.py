"""``make lab``: Jupyter opens the jupytext .py notebooks as notebooks (issue 15)."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_contents_api_serves_notebook_1_as_a_notebook(tmp_path):
    pytest.importorskip("jupyter_server")
    port, token = free_port(), "qpaper-test"
    # the options of `make lab` (JupyterLab runs on the same server)
    cmd = [sys.executable, "-m", "jupyter_server", "--ServerApp.root_dir=notebooks", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.contents_manager_class=jupytext.TextFileContentsManager", f"--ServerApp.port={port}",
           f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    makefile = (ROOT / "Makefile").read_text()
    assert all(opt in makefile for opt in cmd[3:6])
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
                                       JUPYTER_DATA_DIR=str(tmp_path / "data"), JUPYTER_RUNTIME_DIR=str(tmp_path / "run")))
    try:
        url = f"http://127.0.0.1:{port}/api/contents/01-double-jpeg.py?type=notebook&content=1"
        req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
        for _ in range(120):
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    model = json.loads(r.read())
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()[-2000:]
                time.sleep(0.5)
        else:
            pytest.fail("the server did not answer in 60 s")
        assert model["type"] == "notebook" and model["name"] == "01-double-jpeg.py"
        cells = model["content"]["cells"]
        assert cells[0]["cell_type"] == "markdown"
        params = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
        assert len(params) == 1 and 'profile = "smoke"' in params[0]["source"]
    finally:
        server.terminate()
        server.wait(30)
