"""Open every page of the built book in headless Chromium and check what a reader would trip over.

    python scripts/check_site.py [_build/html ...] [--screenshots _build/screenshots] [--chromium /usr/bin/chromium]

Serves the site from a local HTTP server (as a reader's browser would load it, not from file://) and, per page:
no JavaScript error in the console from the book's own assets, every image of the book loaded (natural width > 0),
every internal link and anchor resolving to a file and an id of the site; tables with no cell cut short, no count
printed as a float and no table wider than the text column; no code block scrolling sideways; no stderr box; math typeset; on the first page, the
claims table with
a verdict in every row. A full-page screenshot of each page is saved. Requests that leave the local server (CDN
scripts such as MathJax) are blocked and counted: nothing outside this machine is reachable here, and a page must
not depend on it to show its content.

Exit status: 0 when every check passes, 1 when one fails (each failure on its own line), 2 on bad input (no site,
no Chromium).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

SKIPPED = ("_static", "_sources", "_images", "_downloads", "_sphinx_design_static")
CLAIMS_HEADER = "this build's verdict"


def pages(site: Path) -> list[Path]:
    return sorted(path for path in site.rglob("*.html")
                  if not any(part in SKIPPED for part in path.relative_to(site).parts))


@functools.lru_cache(maxsize=None)
def ids_of(path: Path) -> frozenset[str]:
    return frozenset(re.findall(r'\bid="([^"]+)"', path.read_text(encoding="utf-8", errors="replace")))


def broken_links(site: Path, origin: str, hrefs: list[str]) -> list[str]:
    """The internal links (same origin) whose file is not in the site, or whose #anchor is not an id there."""
    broken = []
    for href in sorted(set(hrefs)):
        if not href.startswith(origin):
            continue
        parts = urlsplit(href)
        target = site / unquote(parts.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href} (no such file)")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in ids_of(target):
            broken.append(f"{href} (no id {parts.fragment!r} on that page)")
    return broken


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


CLAIMS_SCRIPT = """(header) => {
  const plain = text => text.replace(/[\u2018\u2019]/g, "'");  // Sphinx's smart quotes
  const table = Array.from(document.querySelectorAll('table')).find(t => plain(t.innerText).includes(header));
  if (!table) return null;
  const heads = Array.from(table.querySelectorAll('thead th')).map(th => plain(th.innerText.trim()));
  const column = heads.findIndex(text => text.includes(header));
  return {verdicts: Array.from(table.querySelectorAll('tbody tr')).map(row => row.cells[column].innerText.trim()),
          width: table.getBoundingClientRect().width, page: window.innerWidth};
}"""
# The claims table is what a reader takes in at a glance: it must not be squeezed into a narrow column.
CLAIMS_MIN_SHARE = 0.6
# A cell's stderr rendered on a page (a warning, a library's log line): the reader sees noise with paths in it.
STDERR_SCRIPT = """() => Array.from(document.querySelectorAll('.output.stderr'))
  .map(box => box.innerText.trim().split('\\n')[0].slice(0, 160))"""
# Math on the page (MyST's "math" spans and blocks) typeset by MathJax, which must load from the site itself: with
# every other host blocked, as for a reader offline, a CDN copy leaves raw "\\(L\\)" on the page.
MATH_SCRIPT = """async () => {
  const math = document.querySelectorAll('.math').length;
  if (math && window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  return [math, document.querySelectorAll('mjx-container').length];
}"""
# Tables a reader can read: no cell cut short by pandas ("…" or "..."), no count shown as a float (a column whose every
# number is whole but printed "3174.0"), and no table wider than the page's text column (its last columns hidden).
TABLES_SCRIPT = """() => {
  // The article, not <main> around it (a selector list matches in document order: <main> came first).
  const column = document.querySelector('article.bd-article') || document.querySelector('article, main') ||
                 document.body;
  const room = column.clientWidth;
  const problems = [];
  for (const table of document.querySelectorAll('table')) {
    for (const cell of table.querySelectorAll('td, th')) {
      const text = cell.innerText.trim();
      if (text.endsWith('…') || text.endsWith('...')) problems.push(`a table cell is cut short: "${text.slice(-60)}"`);
    }
    const rows = Array.from(table.querySelectorAll('tbody tr'));
    const width = Math.max(0, ...rows.map(row => row.cells.length));
    for (let index = 0; index < width; index++) {
      const numbers = rows.map(row => row.cells[index] ? row.cells[index].innerText.trim() : '')
                          .filter(text => /^-?[0-9][0-9,]*(\\.[0-9]+)?$/.test(text));
      if (numbers.length && numbers.every(text => /\\.0$/.test(text)))
        problems.push(`a count shown as a float: ${numbers[0]} (column ${index + 1} of a table)`);
    }
    const wide = table.getBoundingClientRect().width;
    if (wide > room + 2) problems.push(`a table is wider than its column: ${Math.round(wide)} px in ${room} px`);
  }
  return problems;
}"""
# Code blocks wrap: one wider than its box hides the end of a command or a citation behind a scroll bar.
CODE_SCRIPT = """() => Array.from(document.querySelectorAll('pre'))
  .filter(block => block.scrollWidth > block.clientWidth + 2)
  .map(block => block.innerText.trim().split('\\n')[0].slice(0, 80))"""
IMAGES_SCRIPT = """(origin) => Array.from(document.images)
  .filter(image => image.src.startsWith(origin) || image.src.startsWith('data:'))
  .filter(image => !(image.complete && image.naturalWidth > 0)).map(image => image.src)"""


def check_page(browser, site: Path, origin: str, path: Path, screenshots: Path | None, *, first: bool
               ) -> tuple[list[str], int]:
    """The failures on one page, and how many requests to other hosts it tried (blocked)."""
    name = path.relative_to(site).as_posix()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, blocked = [], []

    def route(request_route):
        if request_route.request.url.startswith(origin) or request_route.request.url.startswith("data:"):
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort()

    def on_console(message):
        if message.type == "error" and (message.location or {}).get("url", "").startswith(origin):
            errors.append(f"console error: {message.text}")

    page.route("**/*", route)
    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"uncaught JavaScript error: {error}"))
    page.goto(f"{origin}/{name}", wait_until="load")
    failures = [f"{name}: {error}" for error in errors]
    failures += [f"{name}: image not loaded: {source}" for source in page.evaluate(IMAGES_SCRIPT, origin)]
    failures += [f"{name}: a cell's stderr is shown: {first_line}" for first_line in page.evaluate(STDERR_SCRIPT)]
    failures += [f"{name}: {problem}" for problem in dict.fromkeys(page.evaluate(TABLES_SCRIPT))]
    failures += [f"{name}: a code block scrolls sideways: {line}" for line in page.evaluate(CODE_SCRIPT)]
    math, typeset = page.evaluate(MATH_SCRIPT)
    if math and not typeset:
        failures.append(f"{name}: math not rendered ({math} formulas): MathJax did not load from the site")
    hrefs = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    failures += [f"{name}: broken internal link: {link}" for link in broken_links(site, origin, hrefs)]
    if first:
        claims = page.evaluate(CLAIMS_SCRIPT, CLAIMS_HEADER)
        if claims is None:
            failures.append(f"{name}: no claims table (a table with a {CLAIMS_HEADER!r} column)")
        elif not claims["verdicts"] or not all(claims["verdicts"]):
            failures.append(f"{name}: the claims table has a row without a verdict: {claims['verdicts']}")
        elif claims["width"] < CLAIMS_MIN_SHARE * claims["page"]:
            failures.append(f"{name}: the claims table is cramped: {claims['width']:.0f} px of a "
                            f"{claims['page']} px window (at least {CLAIMS_MIN_SHARE:.0%})")
    if screenshots is not None:
        target = screenshots / (name.removesuffix(".html").replace("/", "__") + ".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
    page.close()
    return failures, len(blocked)


def first_page(site: Path) -> Path:
    """The book's first page: where index.html redirects (Jupyter Book writes a redirect to the root file)."""
    index = site / "index.html"
    match = re.search(r'url=([^"\'>]+)', index.read_text(encoding="utf-8")) if index.exists() else None
    return (site / match.group(1)).resolve() if match else index.resolve()


def check_site(browser, site: Path, screenshots: Path) -> tuple[list[str], int, int]:
    """Every page of one built site in `browser`: (failures, pages checked, requests to other hosts blocked)."""
    server, origin = serve(site)
    start = first_page(site).relative_to(site)
    failures, blocked = [], 0
    redirect = site / "index.html" if start != Path("index.html") else None  # it only redirects to the first page
    checked = [path for path in pages(site) if path != redirect]
    try:
        for path in checked:
            found, tried = check_page(browser, site, origin, path, screenshots, first=path.relative_to(site) == start)
            failures += found
            blocked += tried
    finally:
        server.shutdown()
    return failures, len(checked), blocked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sites", nargs="*", default=[Path("_build/html")], type=Path, metavar="site",
                        help="built sites (default: _build/html); several share one browser, each failure line "
                             "then begins with its site")
    parser.add_argument("--screenshots", default=None, type=Path,
                        help="where full-page screenshots go (default: <site>/../screenshots)")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable to drive")
    args = parser.parse_args(argv)
    sites = [site.resolve() for site in args.sites]
    for site in sites:
        if not (site / "index.html").is_file():
            print(f"error: no built site at {site} (build the book first: bash scripts/build-book.sh)",
                  file=sys.stderr)
            return 2
    if not Path(args.chromium).is_file():
        print(f"error: no Chromium at {args.chromium} (install it: bash scripts/check-browser.sh does, as root, "
              "with apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    failed = False
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        for number, site in enumerate(sites, 1):
            screenshots = args.screenshots or site.parent / "screenshots"
            if args.screenshots and len(sites) > 1:
                screenshots = screenshots / str(number)
            failures, checked, blocked = check_site(browser, site, screenshots)
            prefix = f"{site}: " if len(sites) > 1 else ""
            for failure in failures:
                print(prefix + failure)
            print(f"{prefix}checked {checked} pages in Chromium ({len(failures)} failures; {blocked} requests to "
                  f"other hosts blocked); screenshots in {screenshots}")
            failed = failed or bool(failures)
        browser.close()
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(2)
