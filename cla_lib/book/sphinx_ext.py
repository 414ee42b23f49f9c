"""The book's Sphinx extension (``sphinx.extra_extensions`` in `_config.yml`): provenance in the footers, and fixes
to what the theme stack ships, found by the browser check (scripts/check_site.py).

- The footer names the commit, the build date and the package versions (`cla_lib.book.provenance`).
- The colour mode defaults to ``auto`` (with none, the theme logs "Got invalid theme mode" on a first visit).
- Chapters rendered from jupyter-cache are dropped from it first when the library key changed
  (`cla_lib.book.book_cache`): a bare ``jupyter-book build .`` never shows outputs of another library.
- MathJax is served from the build (`_static/mathjax`, from the pinned ``sphinx-mathjax-offline`` package) rather
  than a CDN, so an offline reader sees rendered math, not raw ``\\(L\\)``.
- A table's column header breaks after its underscores (``prompts_only_<wbr>over_<wbr>new``), never inside a word.
- Each inline script is included once: sphinx-thebe adds its ``const THEBE_JS_URL = ...`` once per read phase, and
  a second copy stops the page's scripts with "Identifier 'THEBE_JS_URL' has already been declared".
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

from docutils import nodes

from cla_lib.book.book_cache import invalidate
from cla_lib.book.provenance import footer_html, provenance


def _configure_theme(app, config) -> None:
    options = dict(config.html_theme_options or {})
    options["extra_footer"] = " ".join(part for part in (options.get("extra_footer", ""), footer_html(provenance()))
                                       if part)
    config.html_theme_options = options
    # pydata-sphinx-theme reads the mode from the page context, not from its theme options.
    config.html_context = {**(config.html_context or {}), "default_mode": "auto"}


# What tex-chtml.js loads: its fonts, the TeX extensions it autoloads, the menu and its accessibility parts (not
# the 4 MB speech engine, fetched only when a reader turns speech on).
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts", "input/tex/extensions", "ui", "a11y")


def _mathjax_source() -> Path | None:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    return Path(spec.origin).parent / "static" / "mathjax" if spec and spec.origin else None


def _serve_mathjax(app, config) -> None:
    if _mathjax_source() is not None:
        config.mathjax_path = "mathjax/tex-chtml.js"  # relative: under the build's _static


def _copy_mathjax(app, exception) -> None:
    source = _mathjax_source()
    if exception is not None or source is None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def _drop_stale_outputs(app) -> None:
    if app.config.nb_execution_mode != "cache":
        return
    cache = app.config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache"
    invalidate(Path(cache), report=lambda message: print(message, flush=True))


HEADER_CELL = re.compile(r"(<th\b[^>]*>)([^<]*)(</th>)")


def header_breaks(html: str) -> str:
    """`html` with a line-break opportunity after every underscore of a table header cell (a pandas table's column
    names: their words wrap at the underscores, and the CSS lets nothing else break)."""
    return HEADER_CELL.sub(lambda match: match[1] + match[2].replace("_", "_<wbr>") + match[3], html)


def _break_headers(app, doctree, docname) -> None:
    for raw in list(doctree.findall(nodes.raw)):
        if "html" in raw.get("format", "").split() and "<th" in raw.astext():
            text = header_breaks(raw.astext())
            raw.replace_self(nodes.raw(text, text, **raw.attributes))


def _script_key(script) -> tuple:
    """What makes two script entries the same: the file, or the body of an inline script, and the attributes."""
    filename = getattr(script, "filename", script) or ""  # an inline script's is None or "", by who added it
    attributes = tuple(sorted((key, str(value)) for key, value in getattr(script, "attributes", {}).items()))
    return str(filename), attributes


def _one_copy_of_each_script(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: the builder resets its own list before the next page


def setup(app):
    app.connect("config-inited", _configure_theme)
    app.connect("config-inited", _serve_mathjax)
    app.connect("build-finished", _copy_mathjax)
    app.connect("builder-inited", _drop_stale_outputs, priority=100)  # before myst-nb opens the cache
    # Early: `html-page-context` stops at the first listener that returns a template, and the theme's may.
    app.connect("html-page-context", _one_copy_of_each_script, priority=100)
    app.connect("doctree-resolved", _break_headers)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
