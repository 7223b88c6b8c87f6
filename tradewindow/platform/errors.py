"""Errors are data. Validation collects every problem and raises once; the API turns the
exception into `{"errors": [{"path", "code", "message"}]}` with its 4xx status.

Codes are stable snake_case identifiers that integrators may branch on; messages are sentences
for a person."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "message": self.message}


class DomainError(Exception):
    """Base of every error a user can cause. Never a 500."""

    status = 422

    def __init__(self, problems: list[Problem] | Problem | str, code: str | None = None,
                 path: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem(path, code or "invalid", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("; ".join(f"{p.path}: {p.code}" for p in self.problems))

    @property
    def code(self) -> str:
        return self.problems[0].code


class ValidationFailed(DomainError):
    status = 422


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Unauthenticated(DomainError):
    status = 401


class Conflict(DomainError):
    status = 409


@dataclass
class Problems:
    """Collects every problem of a submission before refusing it."""

    items: list[Problem] = field(default_factory=list)

    def add(self, path: str, code: str, message: str) -> None:
        self.items.append(Problem(path, code, message))

    def extend(self, other: list[Problem]) -> None:
        self.items.extend(other)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def not_found(what: str, ident: str) -> NotFound:
    return NotFound(f"No {what} {ident!r} exists (or it is not visible to you).", "not_found")


def require(condition: bool, code: str, message: str) -> None:
    """Permission check: refuses with 403 when the condition does not hold."""
    if not condition:
        raise Forbidden(message, code)


def json_path(parts: object) -> str:
    """A location in a JSON document as a problem path:
    ['items', 0, 'value'] -> 'items[0].value'."""
    path = ""
    for part in parts:  # type: ignore[attr-defined]
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path
