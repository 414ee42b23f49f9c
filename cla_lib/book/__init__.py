"""The book's machinery: a chapter's set-up and parameters (`chapters`), reruns per model and language and what they
cost (`rerun`, `costs`), results and provenance as files (`publish`, `provenance`), chapters executed once per
library state (`book_cache`, `execution`), and the Sphinx extension (`sphinx_ext`)."""
