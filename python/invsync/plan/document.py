"""The playbook as data: sections of paragraphs, tables and checklists.

The section modules say what the playbook holds; `markdown.py` alone says how it looks,
so tests can read figures from the tables without parsing Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Block", "Check", "Checklist", "Document", "Heading", "Paragraph", "Section", "Table"]


@dataclass(frozen=True)
class Paragraph:
    """Prose, Markdown inline markup allowed."""

    text: str


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table whose cells are already worded for a reader."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def row(self, first_cell: str) -> dict[str, str]:
        """The first row whose first cell is `first_cell`, keyed by the header;
        `KeyError` when there is none."""
        for row in self.rows:
            if row[0] == first_cell:
                return dict(zip(self.header, row, strict=True))
        raise KeyError(first_cell)


@dataclass(frozen=True)
class Check:
    """One item of the risk checklist: what is at risk, what was found, what to do."""

    subject: str
    finding: str
    action: str


@dataclass(frozen=True)
class Checklist:
    """Items a team ticks off."""

    items: tuple[Check, ...]


Block = Paragraph | Heading | Table | Checklist


@dataclass(frozen=True)
class Section:
    """A numbered part of the playbook."""

    title: str
    blocks: tuple[Block, ...]

    def tables(self) -> list[Table]:
        return [block for block in self.blocks if isinstance(block, Table)]

    def checks(self) -> list[Check]:
        return [
            item for block in self.blocks if isinstance(block, Checklist) for item in block.items
        ]


@dataclass(frozen=True)
class Document:
    """The whole playbook: a title, how to read it, and its sections in order."""

    title: str
    intro: tuple[Block, ...]
    sections: tuple[Section, ...]
