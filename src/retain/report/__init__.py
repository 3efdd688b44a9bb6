"""HTML reports: PNG plots of accuracy matrices and curves, and an index.html showing them."""

from retain.report.html import Section, write_html
from retain.report.plots import plot_curves, plot_matrix
from retain.report.runs import write_report

__all__ = ["Section", "write_html", "plot_matrix", "plot_curves", "write_report"]
