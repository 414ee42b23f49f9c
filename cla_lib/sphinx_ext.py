"""The book's Sphinx extension (``sphinx.extra_extensions`` in `_config.yml`): provenance in every page's footer,
and two fixes to what the theme stack ships, found by the browser check (scripts/check_site.py).

- The footer names the commit, the build date and the package versions (`cla_lib.provenance`).
- The theme's colour mode defaults to ``auto``: with none set, pydata-sphinx-theme logs "Got invalid theme mode"
  on every reader's first visit.
- Chapters rendered from jupyter-cache are dropped from it first when the library key changed
  (`cla_lib.book_cache`): a bare ``jupyter-book build .`` never shows outputs of another library.
- Each inline script is included once: sphinx-thebe adds its ``const THEBE_JS_URL = ...`` once per read phase, and
  a second copy stops the page's scripts with "Identifier 'THEBE_JS_URL' has already been declared".
"""

from __future__ import annotations

from pathlib import Path

from cla_lib.book_cache import invalidate
from cla_lib.provenance import footer_html, provenance


def _configure_theme(app, config) -> None:
    options = dict(config.html_theme_options or {})
    options["extra_footer"] = " ".join(part for part in (options.get("extra_footer", ""), footer_html(provenance()))
                                       if part)
    config.html_theme_options = options
    # pydata-sphinx-theme reads the mode from the page context, not from its theme options.
    config.html_context = {**(config.html_context or {}), "default_mode": "auto"}


def _drop_stale_outputs(app) -> None:
    if app.config.nb_execution_mode != "cache":
        return
    cache = app.config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache"
    invalidate(Path(cache), report=lambda message: print(message, flush=True))


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
    app.connect("builder-inited", _drop_stale_outputs, priority=100)  # before myst-nb opens the cache
    # Early: `html-page-context` stops at the first listener that returns a template, and the theme's may.
    app.connect("html-page-context", _one_copy_of_each_script, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
