"""MkDocs hooks for the documentation site (``mkdocs.yml``, ``make docs``).

Some pages of the site live outside ``docs/`` because the repository is read on its own too:
the RTL interface spec sits beside the Verilog it specifies (``rtl/README.md``). The hooks serve
each such file as a site page and point the guide's links to it at that page, so the repository
keeps one copy and the site's strict link check still sees every link.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

REPO = Path(__file__).resolve().parents[1]

SERVED = {"rtl/README.md": "reference/rtl_interface.md"}
"""Repository file -> the site page that serves it."""


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add each served repository file as a generated page."""
    for source, page in SERVED.items():
        files.append(File.generated(config, page, abs_src_path=str(REPO / source)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Rewrite links from a page to a served repository file into links to its site page."""
    page_dir = (REPO / "docs" / page.file.src_uri).parent
    for source, served in SERVED.items():
        target = (REPO / source).resolve()

        def relink(match: re.Match[str], target: Path = target, served: str = served) -> str:
            if (page_dir / match.group(2)).resolve() != target:
                return match.group(0)
            relative = os.path.relpath(served, Path(page.file.src_uri).parent.as_posix() or ".")
            return f"]({Path(relative).as_posix()}{match.group(3) or ''})"

        markdown = re.sub(r"\]\((([^)#\s]+))(#[^)\s]*)?\)", relink, markdown)
    return markdown
