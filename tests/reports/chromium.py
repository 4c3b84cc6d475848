"""Open a page in headless Chromium and read back what the report's script recorded."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


class Drawn(HTMLParser):
    """The status marker's attributes and, per figure div, its state and whether an
    <svg class="main-svg"> was drawn inside it."""

    def __init__(self):
        super().__init__()
        self.status: dict[str, str] = {}
        self.figures: dict[str, dict] = {}
        self._open: list[str | None] = []  # figure id owning each open div, or None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id") == "report-status":
            self.status = attrs
        owner = next((o for o in reversed(self._open) if o), None)
        if tag == "div":
            if "data-figure" in attrs:
                owner = attrs["id"]
                self.figures[owner] = {"drawn": attrs.get("data-drawn"), "svg": False}
                self._open.append(owner)
            else:
                self._open.append(None)
        if tag == "svg" and owner and "main-svg" in (attrs.get("class") or "").split():
            self.figures[owner]["svg"] = True

    def handle_endtag(self, tag):
        if tag == "div" and self._open:
            self._open.pop()


def open_in_chromium(page: str, tmp_path: Path) -> Drawn:
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        # any attempt to reach the network fails instead of waiting
        "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,1000", "--virtual-time-budget=30000", "--dump-dom", path.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    parsed = Drawn()
    parsed.feed(result.stdout)
    assert parsed.status, "no #report-status in the dumped DOM:\n" + result.stdout[:500]
    return parsed
