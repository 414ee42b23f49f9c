"""The browser check of the rendered book (scripts/check_site.py), run in real headless Chromium on a small site:
it passes a sound site and fails on a missing image, a broken internal link, a missing anchor, a JavaScript error
a claims table without verdicts, a cell's stderr shown on the page, raw math, a table cell cut short, a count printed
as a float, a table wider than the column and a code block scrolling sideways (each broken on purpose)."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium: bash scripts/install-browser.sh installs it")

# A 1x1 PNG.
PIXEL = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
CLAIMS = """<table style="width: {width}px"><thead><tr><th>claim</th><th>this build's verdict</th></tr></thead>
<tbody><tr><td>1. the plane</td><td>{verdict}</td></tr></tbody></table>"""
# Tables that must pass: whole counts, measured values with one decimal beside others, an ellipsis inside a cell.
SOUND_TABLES = """<table><tbody><tr><td>records</td><td>3174</td></tr><tr><td>GFLOP/s</td><td>31.0</td></tr>
<tr><td>ceiling</td><td>97.7</td></tr><tr><td>note</td><td>“…” is kept</td></tr></tbody></table>"""


def write_site(directory: Path, *, verdict: str = "holds", image: bool = True, link: str = "other.html#results",
               script: str = "", width: int = 1000) -> Path:
    site = directory / "html"
    (site / "book" / "_images").mkdir(parents=True)
    (site / "index.html").write_text('<html><head><meta http-equiv="Refresh" content="0; url=book/intro.html" />'
                                     "</head></html>")
    (site / "book" / "intro.html").write_text(
        f"<html><body><h1>Intro</h1>{CLAIMS.format(verdict=verdict, width=width)}"
        f'<img src="_images/figure.png" alt="a figure"><a href="{link}">results</a>'
        f'<a href="https://example.org/elsewhere">outside</a>{SOUND_TABLES}{script}</body></html>')
    (site / "book" / "other.html").write_text('<html><body><h2 id="results">Results</h2></body></html>')
    if image:
        (site / "book" / "_images" / "figure.png").write_bytes(PIXEL)
    return site


def check(*sites: Path, screenshots: bool = True) -> subprocess.CompletedProcess:
    shots = ["--screenshots", str(sites[0].parent / "shots")] if screenshots else []
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "check_site.py"), *map(str, sites), "--chromium",
                           CHROMIUM, *shots], capture_output=True, text=True, timeout=300)


def test_a_sound_site_passes_and_every_page_gets_a_screenshot(tmp_path):
    result = check(write_site(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checked 2 pages" in result.stdout
    shots = sorted(path.name for path in (tmp_path / "shots").glob("*.png"))
    assert shots == ["book__intro.png", "book__other.png"]
    assert all((tmp_path / "shots" / name).stat().st_size > 0 for name in shots)


BROKEN = [
    ({"image": False}, "image not loaded"),
    ({"link": "missing.html"}, "broken internal link"),
    ({"link": "other.html#nowhere"}, "no id 'nowhere'"),
    ({"script": "<script>undefinedFunction();</script>"}, "uncaught JavaScript error"),
    ({"verdict": ""}, "a row without a verdict"),
    ({"width": 530}, "the claims table is cramped: 530 px of a 1280 px window"),
    ({"script": '<div class="output stderr highlight-myst-ansi notranslate"><pre>/x/tqdm/auto.py:21: TqdmWarning: '
                'IProgress not found</pre></div>'}, "a cell's stderr is shown: /x/tqdm/auto.py:21: TqdmWarning"),
    ({"script": '<span class="math notranslate nohighlight">\\(L\\)</span>'
                '<script src="https://cdn.example.org/mathjax/tex-chtml.js"></script>'}, "math not rendered (1 formulas)"),
    ({"script": "<table><tbody><tr><td>(n = 96 questions x 1 ...</td></tr></tbody></table>"},
     'a table cell is cut short: "(n = 96 questions x 1 ..."'),
    ({"script": "<table><tbody><tr><td>records</td><td>3174.0</td></tr><tr><td>steps</td><td>2400.0</td></tr>"
                "</tbody></table>"}, "a count shown as a float: 3174.0"),
    ({"script": '<table style="width: 3000px"><tbody><tr><td>detectable</td></tr></tbody></table>'},
     "a table is wider than its column: 3000 px"),
    ({"script": '<main style="width: 1200px"><article class="bd-article" style="width: 700px"><table style="width: '
                '800px"><tbody><tr><td>detectable</td></tr></tbody></table></article></main>'},
     "a table is wider than its column: 800 px in 700 px"),
    ({"script": '<pre style="width: 300px; overflow-x: auto">papermill book/01_organism_plane.ipynb out.ipynb -p model '
                'gemma-3-12b-it -p language ko -p transfer_data CohereForAI/Global-MMLU</pre>'},
     "a code block scrolls sideways: papermill book/01_organism_plane.ipynb"),
]
BROKEN_IDS = ["image", "link", "anchor", "javascript", "claims", "cramped", "stderr", "math", "cut", "float-count", "wide",
              "wide-in-article", "code"]


def test_each_site_broken_on_purpose_fails_with_its_own_failure(tmp_path):
    """Every broken site, and a sound one, in one browser session (a Chromium start costs more than a page)."""
    sound = write_site(tmp_path / "sound")
    sites = [write_site(tmp_path / name, **broken) for name, (broken, _) in zip(BROKEN_IDS, BROKEN, strict=True)]
    result = check(sound, *sites, screenshots=False)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for site, (_, expected) in zip(sites, BROKEN, strict=True):
        own = [line for line in lines if line.startswith(f"{site.resolve()}: ")]
        assert any(expected in line for line in own), (site, own)
        assert "checked 2 pages in Chromium (0 failures" not in own[-1], own[-1]
    assert [line for line in lines if line.startswith(f"{sound.resolve()}: ")] == [
        f"{sound.resolve()}: checked 2 pages in Chromium (0 failures; 0 requests to other hosts blocked); "
        f"screenshots in {sound.parent / 'screenshots'}"]


def test_math_typeset_by_a_copy_of_mathjax_in_the_site_passes(tmp_path):
    from cla_lib.book.sphinx_ext import _mathjax_source

    site = write_site(tmp_path, script='<span class="math notranslate nohighlight">\\(L\\)</span>'
                                       '<script defer src="_static/mathjax/tex-chtml.js"></script>')
    shutil.copytree(_mathjax_source(), site / "book" / "_static" / "mathjax")
    result = check(site)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_site_is_a_clear_error(tmp_path):
    result = check(tmp_path / "nothing")
    assert result.returncode == 2
    assert "build the book first" in result.stderr and "Traceback" not in result.stderr


def test_table_headers_break_at_their_underscores_only():
    from cla_lib.book.sphinx_ext import header_breaks

    html = '<table><thead><tr><th class="x">prompts_only_over_new</th><th>seed</th></tr></thead>' \
           '<tbody><tr><td>a_b</td></tr></tbody></table>'
    assert header_breaks(html) == ('<table><thead><tr><th class="x">prompts_<wbr>only_<wbr>over_<wbr>new</th>'
                                   '<th>seed</th></tr></thead><tbody><tr><td>a_b</td></tr></tbody></table>')
