"""Render a report as Markdown."""

from __future__ import annotations

from harness.report.model import Report, Table


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def table_md(table: Table) -> str:
    """One table as GitHub-flavoured Markdown."""
    lines = [f"## {table.title}", "", "| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


def render(report: Report) -> str:
    """The whole report as one Markdown document."""
    parts = [f"# {report.title}", ""] + [f"- {line}" for line in report.summary] + [""]
    parts += [table_md(table) for table in report.tables]
    return "\n".join(parts)
