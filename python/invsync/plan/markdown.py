"""The playbook as Markdown, the form a seller hands to their team."""

from __future__ import annotations

from collections.abc import Iterable

from invsync.plan.document import Block, Check, Checklist, Document, Heading, Paragraph, Table

__all__ = ["render"]


def render(document: Document) -> str:
    """The document as Markdown text, ending in one newline."""
    parts = [f"# {document.title}", *_blocks(document.intro)]
    for number, section in enumerate(document.sections, start=1):
        parts.append(f"## {number}. {section.title}")
        parts += _blocks(section.blocks)
    return "\n\n".join(parts) + "\n"


def _blocks(blocks: Iterable[Block]) -> list[str]:
    return [_block(block) for block in blocks]


def _block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Heading):
        return f"### {block.text}"
    if isinstance(block, Table):
        return _table(block)
    return _checklist(block)


def _table(table: Table) -> str:
    lines = [_row(table.header), "| " + " | ".join("---" for _ in table.header) + " |"]
    lines += [_row(row) for row in table.rows]
    return "\n".join(lines)


def _row(cells: Iterable[str]) -> str:
    # A `|` inside a cell would end it early.
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _checklist(checklist: Checklist) -> str:
    return "\n".join(_check(item) for item in checklist.items)


def _check(item: Check) -> str:
    return f"- [ ] **{item.subject}**: {item.finding} *Do:* {item.action}"
