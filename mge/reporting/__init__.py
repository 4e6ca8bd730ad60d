"""Reporting: tables for the terminal, Markdown and CSV, and plots of sweeps."""

from mge.reporting.evolution import plot_history
from mge.reporting.sweep import collect_jobs, plot_sweep, sweep_rows, write_table
from mge.reporting.table import markdown_table, write_csv

__all__ = ["collect_jobs", "markdown_table", "plot_history", "plot_sweep", "sweep_rows", "write_csv", "write_table"]
