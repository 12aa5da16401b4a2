"""Exporters over one report model: terminal (Rich), Markdown, CSV."""
