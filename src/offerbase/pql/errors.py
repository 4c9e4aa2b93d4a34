"""The one exception type of the PQL package, with a position in the source."""

from __future__ import annotations

_WIDTH = 80


def _line_col(source: str, offset: int) -> tuple[int, int, str]:
    offset = max(0, min(offset, len(source)))
    line_start = source.rfind("\n", 0, offset) + 1
    line_end = source.find("\n", offset)
    if line_end < 0:
        line_end = len(source)
    line = source.count("\n", 0, offset) + 1
    return line, offset - line_start + 1, source[line_start:line_end]


def _window(text: str, column: int) -> tuple[str, int]:
    """Keep the excerpt readable for long one-line rules: about 80 characters around the caret."""
    if len(text) <= _WIDTH:
        return text, column
    start = max(0, min(column - 1 - _WIDTH // 2, len(text) - _WIDTH))
    head = "..." if start else ""
    tail = "..." if start + _WIDTH < len(text) else ""
    return head + text[start : start + _WIDTH] + tail, column - start + len(head)


class PqlError(Exception):
    """A rule or formula that cannot be parsed, checked or evaluated.

    `line` and `column` are 1-based so they can go straight into an API error body.
    """

    def __init__(self, message: str, source: str = "", offset: int = 0) -> None:
        self.message = message
        self.line, self.column, text = _line_col(source, offset)
        text, caret = _window(text, self.column)
        self.excerpt = f"{text}\n{' ' * (caret - 1)}^"
        super().__init__(f"{message} (line {self.line}, column {self.column})\n{self.excerpt}")
