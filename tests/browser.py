"""Headless Chromium for tests that look at a page as a reader would (installed by `make browser`).

`inspect(page)` loads a copy of the page with two scripts of ours around its own: one first that
records every script error, one last that measures what was drawn, and reads the result back from
the DOM Chromium dumps (no DevTools protocol needed). `screenshot(page, png)` keeps a picture.
"""

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from pdobs.servers.tools import tool_path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         # Nothing may be fetched: a page that needs the network shows it as missing resources.
         "--host-resolver-rules=MAP * ~NOTFOUND")
TIMEOUT_S = 120
WIDTH = 1100

_ERRORS = """<script>window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message || e)); });</script>"""
_CHECK = """<script>(function () {
  var out = {errors: window.__errors, charts: [], nodata: [], height: document.documentElement.scrollHeight,
             external: document.querySelectorAll("script[src], link[href], img[src], iframe, object, embed").length};
  document.querySelectorAll("figure.chart").forEach(function (f) {
    var svg = f.querySelector("svg"), box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    var drawn = 0;
    f.querySelectorAll('[id*="series-"]').forEach(function (g) { var b = g.getBBox(); if (b.width > 0) drawn++; });
    out.charts.push({key: f.dataset.chart, width: box.width, height: box.height, drawn: drawn});
  });
  document.querySelectorAll("[data-nodata]").forEach(function (e) { out.nodata.push(e.dataset.nodata); });
  var pre = document.createElement("pre");
  pre.id = "browser-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();</script>"""


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    cmd = [str(tool_path("chromium")), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=True)


def inspect(page: Path, workdir: Path) -> dict[str, Any]:
    """What the browser drew: script errors, each chart's size and drawn series, no-data texts."""
    html = page.read_text()
    probe = workdir / f"probe-{page.name}"
    probe.write_text(html.replace("<head>", "<head>" + _ERRORS, 1).replace("</body>", _CHECK + "</body>", 1))
    proc = _run([f"--window-size={WIDTH},900", "--dump-dom", probe.resolve().as_uri()], workdir / "profile")
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', proc.stdout, re.S)
    if found is None:
        raise AssertionError(f"the check script never ran; Chromium said: {proc.stderr[-2000:]}")
    return json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def screenshot(page: Path, png: Path, height: int, workdir: Path) -> Path:
    _run([f"--window-size={WIDTH},{min(height, 16000)}", f"--screenshot={png}", page.resolve().as_uri()],
         workdir / "profile")
    return png
