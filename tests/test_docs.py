"""The README is a user's page: short, and every picture and link in it is there."""

from __future__ import annotations

import re

from .helpers import REPO

README = REPO / "README.md"


def test_readme_is_short_and_its_links_and_pictures_exist():
    text = README.read_text(encoding="utf-8")
    assert len(text) <= 8000, f"README.md has {len(text)} characters (at most 8,000)"
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert len(local) >= 10  # the widgets' pictures and the docs
    missing = [t for t in local if not (REPO / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_tile_size_is_written_height_by_width_everywhere():
    """240 x 320 (h x w): the paper's 320 x 240 (w x h) written the other way confused users."""
    paths = [README, *(REPO / "docs").rglob("*.md"), *(REPO / "src").rglob("*.py")]
    wrong = [str(p.relative_to(REPO)) for p in paths
             if re.search(r"320\s*[x×]\s*240", p.read_text(encoding="utf-8"))]
    assert not wrong, f"320 x 240 (w x h) written in: {wrong}"
