"""HTML reports: PNG plots of accuracy matrices and curves, and an index.html showing them."""

from retain.extras import require

require("matplotlib", "report")  # a clear error naming the extra, before any plot import

from retain.report.html import Section, write_html  # noqa: E402
from retain.report.plots import plot_curves, plot_matrix  # noqa: E402
from retain.report.runs import write_report  # noqa: E402

__all__ = ["Section", "write_html", "plot_matrix", "plot_curves", "write_report"]
