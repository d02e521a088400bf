"""What a read met: files, rows, corrupt rows and files, with a few examples (shared by every reader)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MAX_EXAMPLES", "ReadStats"]

MAX_EXAMPLES = 10


@dataclass
class ReadStats:
    """What a read met: files, rows, corrupt rows and files, with a few examples."""

    files: int = 0
    corrupt_files: int = 0
    rows: int = 0
    corrupt_rows: int = 0
    bad_values: int = 0
    skipped_files: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def corrupt(self, where: str, why: str, rows: int = 1) -> None:
        """Count ``rows`` corrupt records at ``where``."""
        self.corrupt_rows += rows
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {why}")

    def bad_value(self, where: str, why: str) -> None:
        """Count one value that is no value (the row is kept; the feature counts it as a type error)."""
        self.bad_values += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {why}")

    def corrupt_file(self, uri: str, why: str) -> None:
        """Count a file that could not be read."""
        self.corrupt_files += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{uri}: {why}")

    @property
    def corrupt_share(self) -> float:
        """Corrupt records over all records (files that failed count as one record each)."""
        total = self.rows + self.corrupt_rows + self.corrupt_files
        return (self.corrupt_rows + self.corrupt_files) / total if total else 0.0
