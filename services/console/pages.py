"""Page handlers by role: each parses, calls one use case, renders (the thin edge)."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from services.console.backend import Problem
from services.console.usecases import agency, complaints, editable, institution, printing, roster, shared, supervisor
from services.console.web import HOME, Context, Web, form_or_problem


async def home(ctx: Context) -> Response:
    return RedirectResponse(HOME.get(ctx.creds.principal.role, "/dashboard"), 303)


# -- district agency and city centre -----------------------------------------------------------------------


async def dashboard(ctx: Context) -> Response:
    return ctx.render("dashboard.html", board=await agency.dashboard(ctx.web.backend, ctx.creds, ctx.web.workflow_day))


async def plans(ctx: Context) -> Response:
    page = await agency.plans(ctx.web.backend, ctx.creds, ctx.request.query_params.get("page_token", ""))
    return ctx.render("plans.html", page=page)


async def plan_new(ctx: Context) -> Response:
    values = {"client_request_id": agency.new_request_id(), "district": shared.district_of(ctx.creds.principal.org)}
    institutions = await agency.institutions(ctx.web.backend, ctx.creds)
    if ctx.request.method == "GET":
        return ctx.render("plan_form.html", values=values, errors={}, modes=agency.MODES, rows=agency.SESSION_ROWS,
                          institutions=institutions)  # fmt: skip
    plan, page = await form_or_problem(
        ctx, lambda f: agency.create_plan(ctx.web.backend, ctx.creds, f), "plan_form.html",
        modes=agency.MODES, rows=agency.SESSION_ROWS, institutions=institutions,
    )  # fmt: skip
    return page or RedirectResponse(f"/{plan.name}", 303)


async def plan_edit(ctx: Context) -> Response:
    name = f"plans/{ctx.request.path_params['id']}"
    institutions = await agency.institutions(ctx.web.backend, ctx.creds)
    if ctx.request.method == "GET":
        plan = (await agency.plan_status(ctx.web.backend, ctx.creds, name)).plan
        return ctx.render("plan_form.html", values=agency.plan_to_form(plan), errors={}, modes=agency.MODES,
                          rows=agency.SESSION_ROWS, editing=name, institutions=institutions)  # fmt: skip
    plan, page = await form_or_problem(
        ctx, lambda f: agency.update_plan(ctx.web.backend, ctx.creds, name, f), "plan_form.html",
        modes=agency.MODES, rows=agency.SESSION_ROWS, editing=name, institutions=institutions,
    )  # fmt: skip
    return page or RedirectResponse(f"/{plan.name}", 303)


async def _plan_page(ctx: Context) -> tuple[str, dict]:
    """The plan page's data: the plan with its supervision status, and who can be chosen for a team."""
    name = f"plans/{ctx.request.path_params['id']}"
    status, candidates = await asyncio.gather(
        agency.plan_status(ctx.web.backend, ctx.creds, name), agency.dispatchable(ctx.web.backend, ctx.creds)
    )
    return name, {"ps": status, "candidates": candidates}


async def plan_detail(ctx: Context) -> Response:
    _, data = await _plan_page(ctx)
    return ctx.render("plan.html", values={"client_request_id": agency.new_request_id()}, errors={}, **data)


async def plan_propose(ctx: Context) -> Response:
    name, data = await _plan_page(ctx)
    proposal, page = await form_or_problem(
        ctx, lambda f: agency.propose(ctx.web.backend, ctx.creds, name, f), "plan.html", **data
    )
    if page:
        return page
    values = {**(await ctx.form()).data, "client_request_id": agency.new_request_id()}
    rule_texts = await agency.rule_texts(ctx.web.backend, ctx.creds)
    return ctx.render("plan.html", proposal=proposal, rule_texts=rule_texts, values=values, errors={}, **data)


async def plan_dispatch(ctx: Context) -> Response:
    name, data = await _plan_page(ctx)
    dispatch, page = await form_or_problem(
        ctx, lambda f: agency.dispatch(ctx.web.backend, ctx.creds, name, f), "plan.html", **data
    )
    return page or RedirectResponse(f"/{name}?dispatched={quote(dispatch.name)}", 303)


async def cases(ctx: Context) -> Response:
    q = ctx.request.query_params
    page = await agency.cases(ctx.web.backend, ctx.creds, int(q.get("state") or 0), q.get("page_token", ""))
    return ctx.render("cases.html", page=page, state=int(q.get("state") or 0))


async def case_detail(ctx: Context) -> Response:
    name = f"cases/{ctx.request.path_params['id']}"
    if ctx.request.method == "GET":
        c = await agency.case(ctx.web.backend, ctx.creds, name)
        return ctx.render("case.html", case=c, rungs=agency.RUNGS, values={}, errors={})
    c = await agency.case(ctx.web.backend, ctx.creds, name)
    decided, page = await form_or_problem(
        ctx, lambda f: agency.decide(ctx.web.backend, ctx.creds, name, f), "case.html", case=c, rungs=agency.RUNGS
    )
    return page or RedirectResponse(f"/{decided.name}", 303)


async def complaint_list(ctx: Context) -> Response:
    q = ctx.request.query_params
    query, state = q.get("q", "").strip(), int(q["state"]) if q.get("state", "").isdigit() else 0
    district = q.get("district", "").strip()
    page = await complaints.complaints(ctx.web.backend, ctx.creds, query, state, district, q.get("page_token", ""))
    return ctx.render("complaints.html", page=page, query=query, state=state, district=district,
                      states=complaints.STATES)  # fmt: skip


async def complaint_new(ctx: Context) -> Response:
    """第二十二条(九): the city centre receives a complaint (a district official is refused by the registry)."""
    subjects = await complaints.subjects(ctx.web.backend, ctx.creds)
    data: dict[str, Any] = {"subjects": subjects, "sources": complaints.SOURCES, "kinds": complaints.SUBJECT_KINDS}
    if ctx.request.method == "GET":
        values = {"client_request_id": agency.new_request_id()}
        return ctx.render("complaint_form.html", values=values, errors={}, **data)
    got, page = await form_or_problem(
        ctx, lambda f: complaints.receive(ctx.web.backend, ctx.creds, f), "complaint_form.html", **data
    )
    return page or RedirectResponse(f"/{got.name}?done={quote('已受理')}", 303)


async def complaint_detail(ctx: Context) -> Response:
    name = f"complaints/{ctx.request.path_params['id']}"
    c = await complaints.complaint(ctx.web.backend, ctx.creds, name)
    if ctx.request.method == "GET":
        return ctx.render("complaint.html", complaint=c, states=complaints.STATES, values={}, errors={})
    done, page = await form_or_problem(
        ctx, lambda f: complaints.handle(ctx.web.backend, ctx.creds, name, f), "complaint.html",
        complaint=c, states=complaints.STATES,
    )  # fmt: skip
    return page or RedirectResponse(f"/{done.name}?done={quote('已记录')}", 303)


async def supervisors(ctx: Context) -> Response:
    page = await agency.supervisors(ctx.web.backend, ctx.creds, ctx.request.query_params.get("page_token", ""))
    return ctx.render("supervisors.html", page=page)


async def supervisor_new(ctx: Context) -> Response:
    values = {"attested_by": ctx.creds.principal.name, "client_request_id": agency.new_request_id()}
    if ctx.request.method == "GET":
        return ctx.render("supervisor_form.html", values=values, errors={}, attestations=roster.ATTESTATIONS)
    upload = (await ctx.request.form()).get("photo")
    photo = await upload.read() if isinstance(upload, UploadFile) else b""
    photo_type = upload.content_type if isinstance(upload, UploadFile) else ""
    sup, page = await form_or_problem(
        ctx, lambda f: roster.register(ctx.web.backend, ctx.creds, f, photo, photo_type or ""),
        "supervisor_form.html", attestations=roster.ATTESTATIONS,
    )  # fmt: skip
    return page or RedirectResponse(f"/{sup.name}?done={quote('已登记：' + sup.full_name)}", 303)


async def supervisor_detail(ctx: Context) -> Response:
    page = await roster.supervisor(ctx.web.backend, ctx.creds, f"supervisors/{ctx.request.path_params['id']}")
    values = {"client_request_id": agency.new_request_id()}
    return ctx.render("supervisor.html", page=page, actions=roster.ACTIONS, errors={}, values=values)


async def supervisor_action(ctx: Context) -> Response:
    name, action = f"supervisors/{ctx.request.path_params['id']}", ctx.request.path_params["action"]
    if action not in roster.ACTIONS:
        return ctx.render("problem.html", status=404, problem=None)
    page = await roster.supervisor(ctx.web.backend, ctx.creds, name)
    done, resp = await form_or_problem(
        ctx, lambda f: roster.act(ctx.web.backend, ctx.creds, name, action, f), "supervisor.html",
        page=page, actions=roster.ACTIONS, action=action,
    )  # fmt: skip
    return resp or RedirectResponse(f"/{name}?done={quote(done)}", 303)


async def badge_print(ctx: Context) -> Response:
    """Long work with its progress: the page streams a line per 100 badges, then the volumes to download."""
    if ctx.request.method == "GET":
        count = await printing.active_badge_count(ctx.web.backend, ctx.creds)
        return ctx.render("print.html", count=count, title=f"{ctx.creds.principal.name} 证卡打印", errors={})
    form = await ctx.form()
    title = form.text("title", "批次标题", max_len=60)
    if form.errors:
        count = await printing.active_badge_count(ctx.web.backend, ctx.creds)
        return ctx.render("print.html", status=400, count=count, title=title, errors=form.errors)
    head, tail = bytes(ctx.render("print.html", running=True).body).decode().split("@@PROGRESS@@")

    async def page() -> AsyncIterator[str]:
        yield head
        try:
            async for p in printing.print_sheets(ctx.web.backend, ctx.creds, title):
                yield f"<p>已排版 {p.done} / {p.total} 张</p>\n"
            links = "".join(f'<li><a href="/{html.escape(d.name)}/download">{html.escape(d.file_name)}</a>'
                            f"（{d.page_count} 页）</li>" for d in p.documents)  # fmt: skip
            yield f'<p class="ok" id="print-done">已完成。</p><ul id="volumes">{links}</ul>'
        except Problem as e:
            yield f'<section class="refusal" role="alert"><h2>{html.escape(e.message)}</h2></section>'
        yield tail

    return StreamingResponse(page(), media_type="text/html; charset=utf-8")


async def reports(ctx: Context) -> Response:
    return ctx.render("reports.html", documents=await agency.reports(ctx.web.backend, ctx.creds))


async def rules(ctx: Context) -> Response:
    return ctx.render("rules.html", rule_set=await agency.rule_set(ctx.web.backend, ctx.creds))


# -- supervisor --------------------------------------------------------------------------------------------


async def my_dispatches(ctx: Context) -> Response:
    return ctx.render("my_dispatches.html", dispatches=await supervisor.my_dispatches(ctx.web.backend, ctx.creds))


async def my_conflicts(ctx: Context) -> Response:
    """第十六条: the declaration comes before the Annex 3 record; once accepted, on to the form."""
    name = f"dispatches/{ctx.request.path_params['id']}"
    d = await supervisor.dispatch(ctx.web.backend, ctx.creds, name)
    data: dict[str, Any] = {"dispatch": d, "kinds": supervisor.CONFLICT_KINDS, "rows": supervisor.CONFLICT_ROWS}
    if ctx.request.method == "GET":
        return ctx.render("conflicts_form.html", values={}, errors={}, **data)
    _, page = await form_or_problem(
        ctx, lambda f: supervisor.declare_conflicts(ctx.web.backend, ctx.creds, name, f), "conflicts_form.html", **data
    )
    return page or RedirectResponse(f"/my/{name}/record?declared=1", 303)


async def my_record(ctx: Context) -> Response:
    name = f"dispatches/{ctx.request.path_params['id']}"
    d = await supervisor.dispatch(ctx.web.backend, ctx.creds, name)
    items = supervisor.checklist(d.form).items
    if ctx.request.method == "GET":
        values = {"client_request_id": agency.new_request_id()}
        declared = ctx.request.query_params.get("declared") == "1"
        return ctx.render("record_form.html", dispatch=d, items=items, values=values, errors={}, declared=declared)
    record, page = await form_or_problem(
        ctx, lambda f: supervisor.submit_record(ctx.web.backend, ctx.creds, name, f), "record_form.html",
        dispatch=d, items=items,
    )  # fmt: skip
    return page or ctx.render("record_receipt.html", record=record)


async def my_badge(ctx: Context) -> Response:
    badge = await supervisor.my_badge(ctx.web.backend, ctx.creds)
    docs = await shared.documents(ctx.web.backend, ctx.creds, badge.name) if badge else None
    return ctx.render("my_badge.html", badge=badge, documents=docs.documents if docs else [])


# -- institution -------------------------------------------------------------------------------------------


async def institution_plans(ctx: Context) -> Response:
    page_token = ctx.request.query_params.get("page_token", "")
    statuses, next_token = await institution.plans(ctx.web.backend, ctx.creds, page_token)
    return ctx.render("institution_plans.html", statuses=statuses, page={"next_page_token": next_token})


async def feedback(ctx: Context) -> Response:
    p = ctx.request.path_params
    dispatch, sup = f"dispatches/{p['dispatch']}", f"supervisors/{p['supervisor']}"
    d = await supervisor.dispatch(ctx.web.backend, ctx.creds, dispatch)
    member = next((m for m in d.members if m.supervisor == sup), None)
    if ctx.request.method == "GET":
        values = {"client_request_id": agency.new_request_id()}
        return ctx.render("feedback_form.html", dispatch=d, member=member, values=values, errors={})
    fb, page = await form_or_problem(
        ctx, lambda f: institution.submit_feedback(ctx.web.backend, ctx.creds, dispatch, sup, f),
        "feedback_form.html", dispatch=d, member=member,
    )  # fmt: skip
    return page or ctx.render("feedback_receipt.html", feedback=fb)


async def badge_check(ctx: Context) -> Response:
    code = ctx.request.query_params.get("code", "").strip()
    result = await institution.verify_badge(ctx.web.backend, ctx.creds, code) if code else None
    return ctx.render("badge_check.html", code=code, result=result)


# -- everyone ----------------------------------------------------------------------------------------------


async def documents(ctx: Context) -> Response:
    q = ctx.request.query_params
    subject = q.get("subject", "").strip()
    page = await shared.documents(ctx.web.backend, ctx.creds, subject, q.get("page_token", ""))
    return ctx.render("documents.html", page=page, subject=subject)


def attachment(doc: shared.Download) -> Response:
    disposition = f"attachment; filename*=UTF-8''{quote(doc.file_name)}"
    return Response(doc.content, media_type=doc.media_type, headers={"Content-Disposition": disposition})


async def document_download(ctx: Context) -> Response:
    return attachment(await shared.download(ctx.web.backend, ctx.creds, f"documents/{ctx.request.path_params['id']}"))


async def record_docx(ctx: Context) -> Response:
    name = f"records/{ctx.request.path_params['id']}"
    return attachment(await editable.record_docx(ctx.web.backend, ctx.creds, name))


async def feedback_docx(ctx: Context) -> Response:
    name = f"feedback/{ctx.request.path_params['id']}"
    return attachment(await editable.feedback_docx(ctx.web.backend, ctx.creds, name))


async def blank_form(ctx: Context) -> Response:
    form = ctx.request.path_params["form"]
    if form not in shared.BLANK_FORMS:
        return ctx.render("problem.html", status=404, problem=None)
    return attachment(await shared.blank_form(ctx.web.backend, ctx.creds, form))


async def inbox(ctx: Context) -> Response:
    if ctx.request.method == "POST":
        await shared.mark_all_read(ctx.web.backend, ctx.creds)
        return RedirectResponse("/inbox", 303)
    page = await shared.inbox(ctx.web.backend, ctx.creds, ctx.request.query_params.get("page_token", ""))
    return ctx.render("inbox.html", page=page)


def routes(web: Web) -> list[Route]:
    get, both = ["GET"], ["GET", "POST"]
    table = [
        ("/", home, get), ("/dashboard", dashboard, get), ("/plans", plans, get), ("/plans/new", plan_new, both),
        ("/plans/{id:int}", plan_detail, get), ("/plans/{id:int}/edit", plan_edit, both),
        ("/plans/{id:int}/propose", plan_propose, ["POST"]), ("/plans/{id:int}/dispatch", plan_dispatch, ["POST"]),
        ("/cases", cases, get), ("/cases/{id:int}", case_detail, both), ("/supervisors", supervisors, get),
        ("/complaints", complaint_list, get), ("/complaints/new", complaint_new, both),
        ("/complaints/{id:int}", complaint_detail, both),
        ("/supervisors/new", supervisor_new, both), ("/supervisors/{id:int}", supervisor_detail, get),
        ("/supervisors/{id:int}/{action}", supervisor_action, ["POST"]),
        ("/reports", reports, get), ("/badges/print", badge_print, both), ("/rules", rules, get),
        ("/my/dispatches", my_dispatches, get),
        ("/my/dispatches/{id:int}/conflicts", my_conflicts, both),
        ("/my/dispatches/{id:int}/record", my_record, both), ("/my/badge", my_badge, get),
        ("/institution/plans", institution_plans, get),
        ("/institution/feedback/{dispatch:int}/{supervisor:int}", feedback, both),
        ("/badge-check", badge_check, get), ("/documents", documents, get),
        ("/documents/{id:path}/download", document_download, get), ("/blank-forms/{form}", blank_form, get),
        ("/records/{id:int}/docx", record_docx, get), ("/feedback/{id:int}/docx", feedback_docx, get),
        ("/inbox", inbox, both),
    ]  # fmt: skip
    out = [Route(path, web.page(fn), methods=methods, name=fn.__name__) for path, fn, methods in table]
    out += [
        Route("/login", web.login_page, methods=both, name="login"),
        Route("/login/oidc", web.login_redirect, methods=get, name="login_oidc"),
        Route("/login/callback", web.login_callback, methods=get, name="login_callback"),
        Route("/logout", web.logout, methods=["POST"], name="logout"),
    ]
    return out
