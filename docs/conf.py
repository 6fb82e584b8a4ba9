"""Sphinx configuration of the documentation site (docs/).

Build (offline; warnings are errors): python -m sphinx -W --keep-going -b html docs docs/_build/html
Markdown pages through MyST-Parser, the furo theme; no extension that needs the network.
"""

from __future__ import annotations

project = "swapcam"
author = "swapcam contributors"
copyright = "swapcam contributors, Apache-2.0"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
# the build output, and what lives here without being a page
exclude_patterns = ["_build", "**/_build"]

# "#heading" links between pages resolve to the headings' GitHub-style anchors, up to ###,
# so the same links work on GitHub and on the site
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

html_theme = "furo"
html_title = "swapcam"
html_static_path: list[str] = []
