"""What the pipeline commands hand back to the CI system: step outputs and a Markdown summary.

* **GitHub Actions**: outputs are appended to ``$GITHUB_OUTPUT`` (``name=value``), the
  summary to ``$GITHUB_STEP_SUMMARY``.
* **Azure Pipelines**: outputs are ``##vso[task.setvariable variable=name;isoutput=true]``
  logging commands; the summary is written to a file in ``$AGENT_TEMPDIRECTORY`` and
  attached to the run with ``##vso[task.uploadsummary]``.
* **Anywhere** (GitLab CI's ``artifacts:reports:dotenv``): with ``$MODELPILOT_DOTENV`` set,
  outputs are also appended to that file as ``MODELPILOT_<NAME>=value``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.config import ci_variables
from modelpilot.package.lineage import ci_provider

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CiReport", "gate_table", "md"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MARKS = {"passed": "✅ passed", "failed": "❌ failed", "skipped": "⏭️ skipped"}


def md(text: Any) -> str:
    """Return ``text`` safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def gate_table(gates: list[dict[str, Any]]) -> str:
    """Render a gate report's gates as a Markdown table."""
    lines = ["| gate | result | detail |", "| --- | --- | --- |"]
    lines += [f"| `{md(g['gate'])}` | {_MARKS.get(g['status'], g['status'])} | {md(g['reason'])} |" for g in gates]
    return "\n".join(lines)


class CiReport:
    """Writes step outputs and summaries for the CI system the command runs in (nothing outside CI)."""

    def __init__(self, variables: Mapping[str, str] | None = None) -> None:
        self.env = dict(ci_variables() if variables is None else variables)
        self.provider = ci_provider(self.env)

    def output(self, name: str, value: str | int) -> None:
        """Hand ``name=value`` to later steps."""
        if not _NAME.match(name):
            raise ValueError(f"invalid output name {name!r}")
        text = str(value)
        if "\n" in text or "\r" in text:
            raise ValueError(f"output {name} must be one line")
        if self.provider == "github" and self.env.get("GITHUB_OUTPUT"):
            with Path(self.env["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as handle:
                handle.write(f"{name}={text}\n")
        if self.provider == "azure-pipelines":
            print(f"##vso[task.setvariable variable={name};isoutput=true]{text}")
        if self.env.get("MODELPILOT_DOTENV"):
            with Path(self.env["MODELPILOT_DOTENV"]).open("a", encoding="utf-8") as handle:
                handle.write(f"MODELPILOT_{name.upper()}={text}\n")

    def summary(self, name: str, markdown: str) -> None:
        """Attach ``markdown`` to the run's summary page."""
        body = markdown.rstrip("\n") + "\n\n"
        if self.provider == "github" and self.env.get("GITHUB_STEP_SUMMARY"):
            with Path(self.env["GITHUB_STEP_SUMMARY"]).open("a", encoding="utf-8") as handle:
                handle.write(body)
        elif self.provider == "azure-pipelines" and self.env.get("AGENT_TEMPDIRECTORY"):
            folder = Path(self.env["AGENT_TEMPDIRECTORY"])
            index = len(list(folder.glob(f"modelpilot-{name}-*.md"))) + 1
            path = folder / f"modelpilot-{name}-{index}.md"
            path.write_text(body, encoding="utf-8")
            print(f"##vso[task.uploadsummary]{path}")
