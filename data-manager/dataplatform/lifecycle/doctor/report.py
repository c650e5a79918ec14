"""What a `dataplatform check` run found: findings in the order the checks made them.

Every finding is a `dataplatform.runtime.code_locations.Finding`, the platform's one finding type;
here `where` is the area of checks ("config-files", "dbt", ...) shown in brackets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dataplatform.runtime.code_locations import Finding

ERROR, WARNING, NOTE = "error", "warning", "note"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, severity: str, area: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(severity, area, message, fix=fix))

    def add_finding(self, finding: Finding) -> None:
        self.findings.append(finding)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def ok(self) -> bool:
        """Errors make `check` exit 1; warnings and notes do not."""
        return not self.errors

    def summary(self) -> str:
        warnings = sum(f.severity == WARNING for f in self.findings)
        return f"check: {len(self.errors)} error(s), {warnings} warning(s)"
