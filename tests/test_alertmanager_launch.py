"""The installed Alertmanager really starts and serves its API (templates found)."""

import subprocess
import time
from pathlib import Path

import requests

from pdobs.servers import alertmanager
from pdobs.servers.prometheus import free_port


def test_alertmanager_starts_and_is_ready(tmp_path: Path):
    conf = tmp_path / "am.yml"
    conf.write_text("route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n")
    port = free_port()
    argv = alertmanager.command([f"--config.file={conf}", f"--storage.path={tmp_path / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).status_code == 200
            except requests.ConnectionError:
                ready = False
            if ready:
                break
            time.sleep(0.2)
        assert ready, f"alertmanager did not become ready (exit {proc.poll()})"
        status = requests.get(f"http://127.0.0.1:{port}/api/v2/status", timeout=5).json()
        assert status["versionInfo"]["version"].startswith("0.")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
