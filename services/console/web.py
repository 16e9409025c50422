"""The web edge: Starlette routes that read the session and the form, call one use case and render a page.

Every page runs as the logged-in user (their credentials go on every gRPC call); which pages the menu offers
follows the token's roles, but what a user may see or do is decided by the services.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import grpc
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.console.backend import Backend, Problem
from services.console.config import ConsoleSettings
from services.console.identity import AGENCY_ROLES, Credentials, LoginRefused, OAuthIssuer
from services.console.sessions import COOKIE, Session, SessionStore
from services.console.usecases.forms import Form, FormErrors, field_errors
from services.console.usecases.shared import Names, WorkflowDay
from services.console.views import environment

log = logging.getLogger(__name__)

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
HOME = {"supervisor": "/my/dispatches", "institution": "/institution/plans"}


@dataclass
class Context:
    """What a page handler gets: the request, the session, the user's credentials and the shared parts."""

    request: Request
    session: Session
    creds: Credentials
    web: Web

    async def form(self) -> Form:
        """The posted form; a field sent several times (checkboxes) becomes its values separated by spaces."""
        values: dict[str, str] = {}
        for k, v in (await self.request.form()).multi_items():
            if isinstance(v, str):  # uploads are read by the page that expects them
                values[k] = f"{values[k]} {v}" if k in values else v
        return Form(values)

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return self.web.render(self.request, self.session, template, status=status, **values)

    async def problem_page(self, p: Problem) -> Response:
        if p.code == grpc.StatusCode.UNAUTHENTICATED:  # the token expired or was revoked: log in again
            self.web.sessions.drop(self.session.id)
            return RedirectResponse(f"/login?next={quote(self.request.url.path)}", status_code=303)
        return self.render("problem.html", status=HTTP_STATUS.get(p.code, 500), problem=p)


Handler = Callable[[Context], Awaitable[Response]]


class Web:
    def __init__(self, settings: ConsoleSettings, backend: Backend, login: OAuthIssuer) -> None:
        self.settings = settings
        self.backend = backend
        self.login_method = login
        self.sessions = SessionStore(settings.console_idle_timeout, settings.data_dir / "console-sessions.db")
        self.names = Names(backend)
        self.workflow_day = WorkflowDay()
        self.templates = environment()

    # -- sessions and pages ------------------------------------------------------------------------------

    def session_of(self, request: Request) -> Session:
        return self.sessions.get(request.cookies.get(COOKIE)) or self.sessions.new()

    def set_cookie(self, response: Response, session: Session) -> Response:
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="lax", secure=self.settings.https, path="/")
        return response

    def render(self, request: Request, session: Session, template: str, *, status: int = 200, **values: Any):
        creds = session.credentials
        body = self.templates.get_template(template).render(
            request=request, csrf=session.csrf, user=creds.principal if creds else None,
            agency_roles=AGENCY_ROLES, names=self.names.agencies, **values,
        )  # fmt: skip
        return self.set_cookie(HTMLResponse(body, status_code=status), session)

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Login required; CSRF token checked on every POST; a service's refusal becomes a Chinese page."""

        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)
            if session.credentials is None:
                return self.set_cookie(RedirectResponse(f"/login?next={quote(request.url.path)}", 303), session)
            if request.method == "POST":
                form = await request.form()
                if not session.csrf_ok(str(form.get("csrf", ""))):
                    return self.render(request, session, "csrf.html", status=403)
            ctx = Context(request, session, session.credentials, self)
            try:
                await self.names.load(ctx.creds)
                return await handler(ctx)
            except Problem as p:
                return await ctx.problem_page(p)

        return endpoint

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return self.render(request, self.session_of(request), "problem.html", status=404, problem=None)

    async def internal_error(self, request: Request, exc: Exception) -> Response:
        """Logged with its traceback; the user sees a Chinese sentence, never the traceback."""
        log.exception("console page failed: %s", request.url.path, exc_info=exc)
        body = self.templates.get_template("problem.html").render(message="服务内部错误，请稍后重试。", user=None)
        return HTMLResponse(body, status_code=500)

    # -- login -------------------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        session = self.session_of(request)
        nxt = request.query_params.get("next", "/")
        if request.method == "GET":
            return self.render(request, session, "login.html", next=nxt, code_flow=self.code_flow)
        form = await request.form()
        if not session.csrf_ok(str(form.get("csrf", ""))):
            return self.render(request, session, "csrf.html", status=403)
        username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
        errors = {k: f"请填写{label}" for k, label, v in (("username", "用户名", username),
                                                       ("password", "密码", password)) if not v}  # fmt: skip
        if not errors:
            try:
                creds = await self.login_method.login(username, password)
            except LoginRefused as e:
                errors["password"] = str(e)
        if errors:
            return self.render(request, session, "login.html", status=401, errors=errors, username=username, next=nxt)
        session = self.sessions.rotate(session, creds)
        return self.set_cookie(RedirectResponse(_safe_next(nxt), 303), session)

    @property
    def code_flow(self) -> bool:
        return self.settings.console_oidc_code_flow

    async def login_redirect(self, request: Request) -> Response:
        """Authorization code + PKCE with an external issuer: state and verifier wait in the session."""
        session = self.session_of(request)
        if not self.code_flow:
            return self.render(request, session, "problem.html", status=404, problem=None)
        redirect_uri = str(request.url_for("login_callback"))
        try:
            url, state, verifier = await self.login_method.authorization_url(redirect_uri)
        except LoginRefused as e:
            return self.render(request, session, "login.html", status=503, errors={"username": str(e)})
        session.pending_login = {"state": state, "verifier": verifier, "redirect_uri": redirect_uri}
        self.sessions.save(session)
        return self.set_cookie(RedirectResponse(url, 303), session)

    async def login_callback(self, request: Request) -> Response:
        session = self.session_of(request)
        if not self.code_flow:
            return self.render(request, session, "problem.html", status=404, problem=None)
        pending, session.pending_login = session.pending_login, {}
        self.sessions.save(session)
        if not pending or request.query_params.get("state") != pending.get("state"):
            return self.render(
                request, session, "login.html", status=400, errors={"username": "登录已失效，请重新登录"}
            )
        try:
            creds = await self.login_method.exchange_code(
                request.query_params.get("code", ""), pending["verifier"], pending["redirect_uri"]
            )
        except LoginRefused as e:
            return self.render(request, session, "login.html", status=401, errors={"username": str(e)})
        return self.set_cookie(RedirectResponse("/", 303), self.sessions.rotate(session, creds))

    async def logout(self, request: Request) -> Response:
        session = self.session_of(request)
        form = await request.form()
        if not session.csrf_ok(str(form.get("csrf", ""))):
            return self.render(request, session, "csrf.html", status=403)
        self.sessions.drop(session.id)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, path="/")
        return response


def _safe_next(nxt: str) -> str:
    """Only a local path: never an open redirect to another site."""
    return nxt if nxt.startswith("/") and not nxt.startswith("//") else "/"


async def form_or_problem(
    ctx: Context, use_case: Callable[[Form], Awaitable[Any]], template: str, **values: Any
) -> tuple[Any, Response | None]:
    """Run a form's use case; on bad input re-render the form with each message beside its field, on a
    refusal with the findings (each citing its article)."""
    form = await ctx.form()
    try:
        return await use_case(form), None
    except FormErrors as e:
        errors, problem = e.errors, None
    except Problem as p:
        if p.code not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                          grpc.StatusCode.ALREADY_EXISTS):  # fmt: skip
            raise
        errors, problem = field_errors(p.fields), p
    status = HTTP_STATUS.get(problem.code, 400) if problem else 400
    return None, ctx.render(template, status=status, errors=errors, problem=problem, values=form.data, **values)
