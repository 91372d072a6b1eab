"""The README's input contract lists exactly what the code accepts and rejects.

The "Your own data" section's event types and the rejection-reason table are held to the code:
a value added to ``EventType`` or ``REASONS`` without its README row fails here.
"""

import re
from pathlib import Path

from usage_features.domain import EventType
from usage_features.ingestion import REASONS

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
OWN_DATA = re.search(r"^## Your own data$(.*?)(?=^## )", README, re.MULTILINE | re.DOTALL)


def backticked_first_cells(table: str) -> list[str]:
    """The backticked names in the first cell of each row below the header."""
    rows = table.strip().splitlines()[2:]
    return [re.fullmatch(r" `([a-z_]+)` ", row.split("|")[1]).group(1) for row in rows]


def test_the_readme_lists_exactly_the_event_types():
    section = OWN_DATA.group(1)
    start = section.index("|", section.index("**Event types**"))
    table = section[start:section.index("\n\n", start)]
    assert backticked_first_cells(table) == [t.value for t in EventType]


def test_the_readme_reason_table_lists_every_rejection_reason():
    start = README.index("| reason | meaning |")
    table = README[start:README.index("\n\n", start)]
    listed = set(re.findall(r"`([a-z_]+)`", "\n".join(
        row.split("|")[1] for row in table.splitlines()[2:])))
    assert listed == set(REASONS)
