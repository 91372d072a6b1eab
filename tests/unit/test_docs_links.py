"""The README stays short, and the README and docs/ link only to what exists.

The README is at most 250 lines (the reference lives in docs/); every relative Markdown link in
README.md and docs/ names an existing file and, with a ``#anchor``, a heading of that file (its
GitHub slug); every page of docs/ is linked from the README.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
MAX_README_LINES = 250

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where links are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower-cased, punctuation dropped, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, duplicates numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    """The link targets of a Markdown file that are not URLs (http:, mailto: ...)."""
    targets = LINK.findall(prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", t)]


def broken_links(path: Path) -> list[str]:
    """Each relative link of path that names no file, or a heading its target does not have."""
    problems = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path.resolve()
        if not resolved.exists():
            problems.append(f"{target}: no such file {resolved}")
        elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
            problems.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return problems


def test_the_readme_is_at_most_250_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): reference goes in docs/")


def test_there_are_docs_pages():
    assert DOCS, "docs/ has no pages"


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file_and_heading(path):
    assert broken_links(path) == []


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in relative_links(README)}
    assert [str(p.relative_to(ROOT)) for p in DOCS if p.resolve() not in linked] == []


@pytest.mark.parametrize(("heading", "anchor"), [
    ("Beyond one machine: Spark", "beyond-one-machine-spark"),
    ("The `events` command", "the-events-command"),
    ("What the scorer refuses", "what-the-scorer-refuses"),
    ("Scaling to 10^8 events", "scaling-to-108-events"),
    ("An export in the seed's own terms", "an-export-in-the-seeds-own-terms"),
    ("GET /health", "get-health"),
    ("materialize --end", "materialize---end"),
    ("Dependencies point inward", "dependencies-point-inward"),
    ("snake_case_name", "snake_case_name"),
])
def test_slugs_are_githubs(heading, anchor):
    assert slug(heading) == anchor


def test_a_broken_link_or_anchor_is_found(tmp_path):
    (tmp_path / "page.md").write_text("# A page\n\n## Some section\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[fine](page.md) [fine](page.md#some-section) [fine](#top) [url](https://example.com)\n"
        "`[in code](missing.md)`\n\n```\n[in a fence](missing.md)\n```\n\n# Top\n\n"
        "[no file](missing.md) [no heading](page.md#nowhere) [no local heading](#nowhere)\n")
    assert broken_links(doc) == [
        f"missing.md: no such file {tmp_path / 'missing.md'}",
        "page.md#nowhere: no heading #nowhere in page.md",
        "#nowhere: no heading #nowhere in doc.md",
    ]
