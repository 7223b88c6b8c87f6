"""What every context's `api.py` and `pages.py` share: the request schema base (unknown fields
refused), the unit-of-work and actor dependencies, role checks, the one error shape, and the
template renderer.

Authentication itself belongs to the registry (it owns users and credentials); the web app hands
it to us as `app.state.authenticator`, so this floor does not import the registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradewindow.platform import jsontext
from tradewindow.platform.auth import Actor, Role, csrf_token_for
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import DomainError, Forbidden, Problem, Unauthenticated, json_path

SESSION_COOKIE = "tw_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "web" / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


class Schema(BaseModel):
    """Base of every request body: unknown fields are refused (`unknown_field`)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Authenticator(Protocol):
    def actor_for_token(self, uow: UnitOfWork, token: str) -> Actor | None: ...

    def actor_for_session(self, uow: UnitOfWork, session_secret: str) -> Actor | None: ...


async def get_uow(request: Request) -> UnitOfWork:
    # async: it does not block, and FastAPI would run a plain function in its thread pool, a
    # thread hop on every request.
    return UnitOfWork(request.app.state.engine)


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def optional_actor(request: Request, uow: UnitOfWork = Depends(get_uow)) -> Actor | None:
    """The caller, from a bearer token (API) or the session cookie (web UI). A cookie-authenticated
    unsafe request must carry the session's CSRF token (header X-CSRF-Token or form field)."""
    authenticator: Authenticator = request.app.state.authenticator
    if (token := _bearer_token(request)) is not None:
        actor = authenticator.actor_for_token(uow, token)
        if actor is None:
            raise Unauthenticated("The token is unknown, expired or revoked.", "invalid_token")
        return actor
    if session := request.cookies.get(SESSION_COOKIE):
        actor = authenticator.actor_for_session(uow, session)
        if actor is not None and request.method not in SAFE_METHODS:
            await _check_csrf(request, session)
        return actor
    return None


async def _check_csrf(request: Request, session: str) -> None:
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get("csrf_token")
    if sent != csrf_token_for(session):
        raise Forbidden("The form has expired or did not come from this site; reload and retry.",
                        "csrf_failed")


async def current_actor(actor: Actor | None = Depends(optional_actor)) -> Actor:
    if actor is None:
        raise Unauthenticated("Log in or send an `Authorization: Bearer` token.", "not_authenticated")
    return actor


def allow(*roles: Role) -> Any:
    """Dependency: the caller, if its role is one of `roles` (403 otherwise). Every endpoint
    names its roles with this; what a caller may see inside is then decided by the service."""
    allowed = frozenset(roles)

    async def dependency(actor: Actor = Depends(current_actor)) -> Actor:
        if actor.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"This needs one of the roles: {names}.", "role_not_allowed")
        return actor

    dependency.allowed_roles = allowed  # type: ignore[attr-defined]
    return Depends(dependency)


# --- the one error shape -----------------------------------------------------------------------

_PYDANTIC_CODES = {
    "extra_forbidden": "unknown_field",
    "missing": "required",
    "json_invalid": "malformed_json",
    "json_type": "malformed_json",
    "model_attributes_type": "wrong_type",
    "dict_type": "wrong_type",
    "list_type": "wrong_type",
    "string_type": "wrong_type",
    "int_type": "wrong_type",
    "int_parsing": "not_a_number",
    "float_parsing": "not_a_number",
    "decimal_parsing": "not_a_number",
    "decimal_type": "not_a_number",
    "bool_parsing": "wrong_type",
    "string_too_long": "too_long",
    "string_too_short": "too_short",
    "too_long": "too_long",
    "too_short": "too_short",
    "string_pattern_mismatch": "invalid_format",
    "literal_error": "invalid_choice",
    "enum": "invalid_choice",
    "date_parsing": "invalid_date",
    "date_from_datetime_parsing": "invalid_date",
    "datetime_parsing": "invalid_datetime",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
}


def error_response(status: int, problems: list[Problem]) -> JSONResponse:
    return JSONResponse({"errors": [p.as_dict() for p in problems]}, status_code=status)


def problem_path(loc: tuple | list) -> str:
    """('body', 'items', 0, 'value') -> 'items[0].value'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        source, parts = parts[0], parts[1:]
        if source != "body" and parts:
            parts = [f"{source}.{parts[0]}", *parts[1:]]
    return json_path(parts)


def problems_from_validation(exc: RequestValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        kind = error.get("type", "invalid")
        code = _PYDANTIC_CODES.get(kind, kind)
        message = error.get("msg", "Invalid value.")
        if code == "unknown_field":
            message = "This field is not part of the request; remove it."
        elif code == "malformed_json":
            # pydantic puts the character position where a field name would go.
            position = error.get("loc", ("", "?"))[-1]
            message = f"The body is not valid JSON (at character {position})."
            problems.append(Problem("", code, message))
            continue
        problems.append(Problem(problem_path(error.get("loc", ())), code, message))
    return problems


def install_error_handlers(app: Any) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Any:
        if _wants_html(request):
            if exc.status == 401:
                return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
            return templates.TemplateResponse(request, "error.html", {
                "actor": None, "csrf_token": "", "status": exc.status, "problems": exc.problems,
            }, status_code=exc.status)
        return error_response(exc.status, exc.problems)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, problems_from_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        return error_response(exc.status_code, [Problem("", codes.get(exc.status_code, "http_error"),
                                                        str(exc.detail))])

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover
        # A bug, not bad input: say so without leaking internals; the traceback goes to the log.
        import logging

        logging.getLogger("tradewindow").exception("unhandled error on %s", request.url.path)
        return error_response(500, [Problem("", "internal_error",
                                            "Something went wrong on our side; nothing was changed.")])


def _wants_html(request: Request) -> bool:
    return (not request.url.path.startswith("/api/")
            and "text/html" in request.headers.get("accept", ""))


class BodySizeLimit:
    """Refuses bodies over the limit with 413 before reading them whole (also when chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, "The request body is too large.")
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, send: Send) -> None:
        response = error_response(413, [Problem("", "payload_too_large",
                                                f"The request body is over {self.max_bytes} bytes.")])
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(response.body)).encode())]})
        await send({"type": "http.response.body", "body": response.body})


# --- pages ---------------------------------------------------------------------------------------

def render(request: Request, template: str, actor: Actor | None, status_code: int = 200,
           **context: Any) -> Any:
    session = request.cookies.get(SESSION_COOKIE)
    return templates.TemplateResponse(request, template, {
        "actor": actor,
        "csrf_token": csrf_token_for(session) if session else "",
        **context,
    }, status_code=status_code)


async def page_actor(request: Request, actor: Actor | None = Depends(optional_actor)) -> Actor:
    """Pages send a visitor who is not logged in to the login page."""
    if actor is None:
        raise Unauthenticated("Please log in.", "not_authenticated")
    return actor


# --- navigation ----------------------------------------------------------------------------------
# Each context's pages add their entries at import; the layout shows those the actor's role may use.

_nav: list[tuple[int, str, str, frozenset[Role]]] = []


def add_nav(label: str, href: str, roles: frozenset[Role] | set[Role], order: int = 50) -> None:
    if not any(entry[2] == href for entry in _nav):
        _nav.append((order, label, href, frozenset(roles)))
        _nav.sort(key=lambda entry: entry[0])


def nav_for(actor: Actor) -> list[dict[str, str]]:
    return [{"label": label, "href": href} for _, label, href, roles in _nav if actor.role in roles]


templates.env.globals["nav_for"] = nav_for


# --- the home dashboard --------------------------------------------------------------------------
# Each context's pages add a function giving the cards (label, figure, link) an actor should see.

DashboardCards = Callable[[UnitOfWork, Actor], list[dict[str, Any]]]
_dashboard: list[tuple[int, DashboardCards]] = []


def add_dashboard_cards(provider: DashboardCards, order: int = 50) -> None:
    if all(existing is not provider for _, existing in _dashboard):
        _dashboard.append((order, provider))
        _dashboard.sort(key=lambda entry: entry[0])


def dashboard_cards(uow: UnitOfWork, actor: Actor) -> list[dict[str, Any]]:
    return [card for _, provider in _dashboard for card in provider(uow, actor)]


# --- a fast JSON answer for the hot paths ----------------------------------------------------------

def json_answer(content: Any, status_code: int = 200) -> Response:
    """The same JSON FastAPI's encoder gives for our plain dicts (dates and times in ISO 8601,
    decimals as strings), written in one pass: on lodging, the generic encoder cost as much as
    a fifth of the request."""
    return Response(jsontext.answer(content), status_code=status_code, media_type="application/json")
