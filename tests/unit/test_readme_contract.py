"""The README's input contract lists exactly what the code accepts and rejects.

The "Your own data" section and the new reason rows arrive with the README merge of branch
`input` (input.README.md); until then these tests are expected to fail (xfail), and from then on
they hold the README to the code.
"""

import re
from pathlib import Path

import pytest

from usage_features.domain import EventType
from usage_features.ingestion import REASONS

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
OWN_DATA = re.search(r"^## Your own data$(.*?)(?=^## )", README, re.M | re.S)
MERGED = OWN_DATA is not None and "malformed_row" in README


def backticked_first_cells(table: str) -> list[str]:
    """The backticked names in the first cell of each row below the header."""
    rows = table.strip().splitlines()[2:]
    return [re.fullmatch(r" `([a-z_]+)` ", row.split("|")[1]).group(1) for row in rows]


@pytest.mark.xfail(not MERGED, reason="README section not merged yet", strict=True)
def test_the_readme_lists_exactly_the_event_types():
    section = OWN_DATA.group(1)
    start = section.index("|", section.index("**Event types**"))
    table = section[start:section.index("\n\n", start)]
    assert backticked_first_cells(table) == [t.value for t in EventType]


@pytest.mark.xfail(not MERGED, reason="README section not merged yet", strict=True)
def test_the_readme_reason_table_lists_every_rejection_reason():
    start = README.index("| reason | meaning |")
    table = README[start:README.index("\n\n", start)]
    listed = set(re.findall(r"`([a-z_]+)`", "\n".join(
        row.split("|")[1] for row in table.splitlines()[2:])))
    assert listed == set(REASONS)
