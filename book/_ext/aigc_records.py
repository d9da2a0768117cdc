"""Sphinx extension: the ``{record}`` role, a number read from its record when the page is built.

In a page (a notebook's markdown cell or a MyST ``.md`` file)::

    The DCGAN reaches an FD of {record}`card:dcgan_mnist:metrics.fd_mnist|.1f`.

The text before ``|`` is a reference of ``aigc_lessons.records`` (``card:``, ``json:`` or
``bench:``); the optional text after it is a Python format spec. Inside a Markdown table
write ``\\|`` for the bar, since a bare one would end the cell. A reference that does not
resolve is a build error (the book builds with ``-W``), and the page is rebuilt when the
record's file changes.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxRole

from aigc_lessons.records import RecordError, format_record, record, source_file


class RecordRole(SphinxRole):
    """``{record}`REFERENCE|SPEC``` -> the formatted value."""

    def run(self):
        reference, _, spec = self.text.replace("\\|", "|").rpartition("|")
        if not reference:  # no bar: the whole text is the reference
            reference, spec = spec, ""
        try:
            shown = format_record(record(reference), spec.strip())
            self.env.note_dependency(str(source_file(reference)))
        except RecordError as error:
            message = self.inliner.reporter.error(f"{{record}}: {error}", line=self.lineno)
            problem = self.inliner.problematic(self.rawtext, self.rawtext, message)
            return [problem], [message]
        return [nodes.Text(shown)], []


def setup(app: Sphinx) -> dict:
    app.add_role("record", RecordRole())
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
