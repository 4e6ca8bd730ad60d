"""Reporting: tables for the terminal, Markdown and CSV."""

from mge.reporting.table import markdown_table

__all__ = ["markdown_table"]
