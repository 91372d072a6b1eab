"""The input contract page lists exactly what the code accepts and rejects.

``docs/input-contract.md``'s table of the default event types and its rejection-reason table are
held to the code: a value added to ``EventType`` or ``REASONS`` without its row there fails here.
"""

import re
from pathlib import Path

from usage_features.domain import EventType
from usage_features.ingestion import REASONS

CONTRACT = (Path(__file__).parents[2] / "docs" / "input-contract.md").read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The text under exactly this heading line, up to the next heading of the same or a
    higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    match = re.search(rf"^{re.escape(heading)}$(.*?)(?=^#{{1,{level}}} |\Z)", text,
                      re.MULTILINE | re.DOTALL)
    assert match, f"no {heading!r} section in docs/input-contract.md"
    return match.group(1)


def first_table(text: str, header: str = "|") -> str:
    """The first Markdown table in text (whose header line starts with header)."""
    start = text.index(header)
    return text[start:text.index("\n\n", start)]


def backticked_first_cells(table: str) -> list[str]:
    """The backticked names in the first cell of each row below the header."""
    rows = table.strip().splitlines()[2:]
    return [re.fullmatch(r" `([a-z_]+)` ", row.split("|")[1]).group(1) for row in rows]


def test_the_input_contract_lists_exactly_the_event_types():
    events = section(CONTRACT, "## Events")
    table = first_table(section(events, "### Event types of the default vocabulary"))
    assert backticked_first_cells(table) == [t.value for t in EventType]


def test_the_input_contract_reason_table_lists_every_rejection_reason():
    table = first_table(section(CONTRACT, "## Rejection reasons"), "| reason | meaning |")
    listed = set(re.findall(r"`([a-z_]+)`", "\n".join(
        row.split("|")[1] for row in table.splitlines()[2:])))
    assert listed == set(REASONS)
