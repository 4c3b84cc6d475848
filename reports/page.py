"""Page assembly: sections of markup and figures -> one self-contained HTML document.

plotly.js is embedded once; each figure is a JSON block that reports/assets/report.js hands
to Plotly.newPlot. The script records on a status element how many figures drew and every
script error, so a headless browser can check the page (tests/reports/test_browser.py).
Nothing is fetched from the network: no CDN, no fonts, no MathJax.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.resources import files

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from reports.html import Html, esc, tag

# One shared look, sent once and merged into every figure by report.js.
TEMPLATE = "plotly_white"
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "typesetMath": False}


@dataclass
class Figure:
    figure: go.Figure
    caption: str = ""  # plain text under the figure


@dataclass
class Grid:
    """Figures side by side (as many columns as the window allows)."""

    figures: list[Figure]


@dataclass
class Section:
    key: str  # anchor id
    title: str
    blocks: list[Html | Figure | Grid] = field(default_factory=list)

    def add(self, block: Html | Figure | Grid) -> Section:
        self.blocks.append(block)
        return self


def script_json(data) -> str:
    """JSON that is safe inside <script>: no '<' can close the element early."""
    text = data if isinstance(data, str) else json.dumps(data, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def figure_json(figure: go.Figure) -> str:
    # to_json encodes numpy arrays as typed arrays (base64): float32 keeps the page small
    spec = json.loads(figure.to_json())
    spec["layout"].pop("template", None)
    return script_json(json.dumps(spec, sort_keys=True, separators=(",", ":")))


def _asset(name: str) -> str:
    return files("reports").joinpath("assets", name).read_text(encoding="utf-8")


def _template_json() -> str:
    template = json.loads(pio.json.to_json_plotly(pio.templates[TEMPLATE].to_plotly_json()))
    return script_json(json.dumps(template, sort_keys=True, separators=(",", ":")))


def _figure(figure: Figure, specs: list[str]) -> str:
    """The figure's placeholder div; its JSON spec is appended to `specs`."""
    n = len(specs) + 1
    specs.append(f'<script type="application/json" id="fig-{n}-spec">{figure_json(figure.figure)}</script>')
    caption = tag("figcaption", figure.caption) if figure.caption else ""
    return (
        f'<figure><div class="figure" id="fig-{n}" data-figure="{n}" data-drawn="false"></div>'
        f"{caption}</figure>"
    )


def render_page(title: str, header: Html, sections: list[Section]) -> str:
    """The whole document. Figures are numbered in page order (fig-1, fig-2, ...)."""
    body: list[str] = []
    figure_specs: list[str] = []
    toc = "".join(f'<li><a href="#{esc(s.key)}">{esc(s.title)}</a></li>' for s in sections)
    for section in sections:
        body.append(f'<section id="{esc(section.key)}"><h2>{esc(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Grid):
                body.append('<div class="grid">')
                body.extend(_figure(f, figure_specs) for f in block.figures)
                body.append("</div>")
            elif isinstance(block, Figure):
                body.append(_figure(block, figure_specs))
            else:
                body.append(esc(block))
        body.append("</section>")
    expected = len(figure_specs)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title>",
            f"<style>{_asset('report.css')}</style>",
            # errors raised while plotly.js itself loads happen before report.js runs
            "<script>window.reportErrors=[];window.addEventListener('error',function(e){"
            "window.reportErrors.push(String(e.message||e));});</script>",
            f'<script type="text/javascript">{get_plotlyjs()}</script>',
            "</head><body>",
            f"<header><h1>{esc(title)}</h1>{header}<nav><ol>{toc}</ol></nav>",
            f'<p id="report-status" data-expected="{expected}" data-drawn="0" data-failed="0" '
            f'data-errors="[]" data-done="false">Drawing {expected} figures… (needs JavaScript)</p>',
            "</header><main>",
            *body,
            "</main>",
            f'<script type="application/json" id="plotly-template">{_template_json()}</script>',
            f'<script type="application/json" id="plotly-config">{script_json(PLOTLY_CONFIG)}</script>',
            *figure_specs,
            f"<script>{_asset('report.js')}</script>",
            "</body></html>",
            "",
        ]
    )
