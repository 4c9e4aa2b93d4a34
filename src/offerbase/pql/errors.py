"""The one exception type of the PQL package, with a position in the source."""

from __future__ import annotations


def _line_col(source: str, offset: int) -> tuple[int, int, str]:
    offset = max(0, min(offset, len(source)))
    line_start = source.rfind("\n", 0, offset) + 1
    line_end = source.find("\n", offset)
    if line_end < 0:
        line_end = len(source)
    line = source.count("\n", 0, offset) + 1
    return line, offset - line_start + 1, source[line_start:line_end]


class PqlError(Exception):
    """A rule or formula that cannot be parsed, checked or evaluated.

    `line` and `column` are 1-based so they can go straight into an API error body.
    """

    def __init__(self, message: str, source: str = "", offset: int = 0) -> None:
        self.message = message
        self.line, self.column, text = _line_col(source, offset)
        self.excerpt = f"{text}\n{' ' * (self.column - 1)}^"
        super().__init__(f"{message} (line {self.line}, column {self.column})\n{self.excerpt}")
