"""The book's machinery: a chapter's set-up and parameters (`chapters`), reruns per model and language and what they
cost (`rerun`, `costs`), results and provenance as files (`publish`, `provenance`), chapters executed once per
library state (`book_cache`, `execution`), the Sphinx extension (`sphinx_ext`), and the chapters' own pieces: the
loops over seeds (`studies`), chapter 5's (`real_models`) and the appendix's benchmarks (`benchmarks`)."""
