"""The console over HTTPS without a browser: login at the issuer, CSRF, idle timeout, pages by role, district scope."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import wf_helpers as h

from bjsv.registry.v1 import supervision_pb2 as spb
from common.clock import SHANGHAI
from services.console.sessions import SessionStore
from services.console.usecases import agency
from tests.console.conftest import INSTITUTION, PASSWORD, Console


def login(console: Console, username: str, password: str = PASSWORD) -> httpx.Client:
    client = console.http(follow_redirects=False, timeout=30)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    resp = client.post("/login", data={"csrf": csrf, "username": username, "password": password})
    assert resp.status_code in (303, 401), resp.text
    return client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_pages_need_login_and_the_session_cookie_is_secure_httponly_samesite(console: Console) -> None:
    assert console.url.startswith("https://")
    anon = console.http()
    resp = anon.get("/plans", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie


def test_wrong_password_is_refused_beside_the_field(console: Console) -> None:
    client = login(console, "haidian", "wrong")
    page = client.get("/plans")
    assert page.status_code == 303  # still not logged in
    resp = client.post("/login", data={"csrf": csrf_of(client.get("/login").text), "username": "haidian",
                                       "password": "wrong"})  # fmt: skip
    assert resp.status_code == 401 and "用户名或密码错误" in resp.text


def test_a_form_post_without_the_csrf_token_is_refused(console: Console) -> None:
    client = login(console, "haidian")
    resp = client.post("/plans/new", data={"title": "x"})
    assert resp.status_code == 403 and "安全校验未通过" in resp.text
    assert client.get("/plans").status_code == 200  # the session itself is still fine


def test_pages_by_role_show_chinese_display_names(console: Console) -> None:
    client = login(console, "haidian")
    home = client.get("/")
    assert home.headers["location"] == "/dashboard"
    board = client.get("/dashboard")
    assert board.status_code == 200 and "海淀区" in board.text and "agencies/08" not in board.text
    assert "当前半月报告期（第二十四条）：2026-11-16 至 2026-11-30" in board.text  # the workflow clock's today
    rules = client.get("/rules")
    assert rules.status_code == 200 and "第二十条" in rules.text
    sup = login(console, "zhang")
    assert sup.get("/").headers["location"] == "/my/dispatches"
    inst = login(console, "dianli")
    assert inst.get("/").headers["location"] == "/institution/plans"


def test_the_dashboard_follows_the_workflow_clock_when_its_day_changes_art24(console: Console) -> None:
    """The dashboard sends its dated calls with the day it last saw; a moved clock (or midnight) is followed."""
    client = login(console, "haidian")
    try:
        for when, today, period in (
            (dt.datetime(2026, 12, 16, 9, tzinfo=SHANGHAI), "2026-12-16", "2026-12-16 至 2026-12-31"),
            (dt.datetime(2026, 11, 30, 9, tzinfo=SHANGHAI), "2026-11-30", "2026-11-16 至 2026-11-30"),
        ):
            console.set_clock(when)
            for _ in range(4):  # every console worker, each with the day it saw before
                board = client.get("/dashboard")
                assert board.status_code == 200 and f"今天：{today}" in board.text
                assert f"当前半月报告期（第二十四条）：{period}" in board.text
    finally:
        console.set_clock(dt.datetime(2026, 11, 30, 9, tzinfo=SHANGHAI))


def test_the_half_month_period_follows_the_rule_sets_first_half_last_day() -> None:
    assert agency.half_month(dt.date(2028, 2, 16), 15) == (dt.date(2028, 2, 16), dt.date(2028, 2, 29))
    assert agency.half_month(dt.date(2026, 12, 15), 15) == (dt.date(2026, 12, 1), dt.date(2026, 12, 15))
    assert agency.half_month(dt.date(2026, 12, 11), 10) == (dt.date(2026, 12, 11), dt.date(2026, 12, 31))


def test_plan_form_shows_each_message_beside_its_field(console: Console) -> None:
    client = login(console, "haidian")
    form = client.get("/plans/new")
    resp = client.post("/plans/new", data={"csrf": csrf_of(form.text), "client_request_id": "x1",
                                           "candidate_count": "abc", "district": "08"})  # fmt: skip
    assert resp.status_code == 400
    assert 'id="err-title"' in resp.text and "请填写评价计划名称" in resp.text
    assert 'id="err-candidate_count"' in resp.text and "认定人数须为整数" in resp.text


def test_logout_ends_the_session(console: Console) -> None:
    client = login(console, "haidian")
    page = client.get("/dashboard")
    assert client.post("/logout", data={"csrf": csrf_of(page.text)}).status_code == 303
    assert client.get("/dashboard").status_code == 303


def haidian_plan(console: Console, request_id: str) -> spb.Plan:
    msg = h.plan_msg(INSTITUTION, dt.date(2026, 12, 9), title=f"2026年海淀区范围测试计划{request_id}")
    req = spb.CreatePlanRequest(plan=msg, client_request_id=request_id)
    return console.clients.sv.CreatePlan(req, metadata=h.md(h.HAIDIAN)).plan


def test_district_05_cannot_see_district_08_data_by_navigation(console: Console) -> None:
    plan = haidian_plan(console, "scope-nav")
    haidian, chaoyang = login(console, "haidian"), login(console, "chaoyang")
    assert plan.title in haidian.get("/plans").text
    for path in ("/plans", "/dashboard", "/cases", "/documents"):
        page = chaoyang.get(path)
        assert page.status_code == 200 and "朝阳区" in page.text and plan.title not in page.text


def test_the_institution_sees_its_newest_plans_with_their_status_and_no_other_institutions_art18(
    console: Console,
) -> None:
    ours = [haidian_plan(console, f"inst-page-{i}") for i in range(2)]
    other = h.institution(console.clients, "1100082002", "北京海淀某某第二培训学校", "08")
    msg = h.plan_msg(other, dt.date(2026, 12, 9), title="2026年另一机构的评价计划")
    theirs = console.clients.sv.CreatePlan(spb.CreatePlanRequest(plan=msg), metadata=h.md(h.HAIDIAN)).plan
    page = login(console, "dianli").get("/institution/plans")
    assert page.status_code == 200 and all(p.title in page.text for p in ours) and theirs.title not in page.text
    assert page.text.index(ours[1].title) < page.text.index(ours[0].title)  # newest first
    assert "尚未委派督导" in page.text


def test_district_05_cannot_see_district_08_data_by_typed_urls(console: Console) -> None:
    plan = haidian_plan(console, "scope-url")
    chaoyang = login(console, "chaoyang")
    for path in (f"/{plan.name}", f"/{plan.name}/edit"):
        page = chaoyang.get(path)
        assert page.status_code in (403, 404) and plan.title not in page.text


def test_plan_edit_is_prefilled_and_saves_with_the_etag(console: Console) -> None:
    msg = h.plan_msg(INSTITUTION, dt.date(2026, 12, 8), title="2026年第五期焊工职业技能等级认定")
    req = spb.CreatePlanRequest(plan=msg, client_request_id="http-edit-1")
    plan = console.clients.sv.CreatePlan(req, metadata=h.md(h.HAIDIAN)).plan
    client = login(console, "haidian")
    page = client.get(f"/{plan.name}/edit")
    assert page.status_code == 200 and 'value="2026年第五期焊工职业技能等级认定"' in page.text
    etag = re.search(r'name="etag" value="([^"]*)"', page.text).group(1)
    form = {
        "csrf": csrf_of(page.text), "etag": etag, "institution": INSTITUTION, "title": "2026年第五期焊工（三级）认定",
        "occupation": "焊工", "district": "08", "candidate_count": "120", "mode_THEORY_EXAM": "1",
        "sessions[0].session_id": "S1", "sessions[0].venue": "第一考场", "sessions[0].start_time": "2026-12-08T09:00",
        "sessions[0].end_time": "2026-12-08T11:00",
        "sessions[0].examiners": f"钱考评,{h.new_id_number(dt.date(1980, 1, 1))}",
    }  # fmt: skip
    saved = client.post(f"/{plan.name}/edit", data=form)
    assert saved.status_code == 303, saved.text
    assert "2026年第五期焊工（三级）认定" in client.get(f"/{plan.name}").text
    stale = client.post(f"/{plan.name}/edit", data=form)  # the old etag: someone changed it meanwhile
    assert stale.status_code in (400, 409) and 'role="alert"' in stale.text


def test_a_session_ends_after_the_idle_timeout() -> None:
    now = [0.0]
    store = SessionStore(idle_timeout=60, clock=lambda: now[0])
    s = store.new()
    now[0] = 59
    assert store.get(s.id).csrf == s.csrf  # activity renews it
    now[0] = 59 + 61
    assert store.get(s.id) is None


def test_supervisor_suspension_needs_a_reason_and_is_shown_in_chinese(console: Console) -> None:
    client = login(console, "haidian")
    listing = client.get("/supervisors")
    sup = re.search(r'href="/(supervisors/\d+)"', listing.text).group(1)
    page = client.get(f"/{sup}")
    assert "聘期内" in page.text
    refused = client.post(f"/{sup}/suspend", data={"csrf": csrf_of(page.text), "article": "第二十七条", "by": "张科长"})
    assert refused.status_code == 400 and "请填写原因" in refused.text
    done = client.post(f"/{sup}/suspend", data={"csrf": csrf_of(page.text), "reason": "待核查", "article": "第二十七条",
                                                "by": "张科长"})  # fmt: skip
    assert done.status_code == 303
    assert "暂停督导工作" in client.get(done.headers["location"]).text
    back = client.post(f"/{sup}/reinstate", data={"csrf": csrf_of(page.text), "reason": "核查无误", "by": "张科长"})
    assert back.status_code == 303 and "聘期内" in client.get(f"/{sup}").text


def test_unknown_pages_and_api_paths_answer_in_chinese_and_as_problem_json(console: Console) -> None:
    client = login(console, "haidian")
    page = client.get("/no-such-page")
    assert page.status_code == 404 and "页面不存在" in page.text
    api = httpx.get(f"{console.url}/api/v2/whatever", verify=console.ca)
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"
    assert client.get("/login/oidc").status_code == 404  # code flow only with an external issuer configured


def test_badge_print_sheets_stream_their_progress_then_the_volumes(console: Console) -> None:
    """The city centre prints (第十一条: it issues external supervisors' badges); a district is refused with
    the article, as the policy says."""
    district = login(console, "haidian")
    form = district.get("/badges/print")
    refused = district.post("/badges/print", data={"csrf": csrf_of(form.text), "title": "2026年第1批外督员证卡"})
    assert 'role="alert"' in refused.text and "第十一条" in refused.text and "print-done" not in refused.text
    client = login(console, "city")
    form = client.get("/badges/print")
    assert "有效证卡 3 张" in form.text
    run = client.post("/badges/print", data={"csrf": csrf_of(form.text), "title": "2026年第1批外督员证卡"}, timeout=120)
    assert run.status_code == 200 and "已排版 3 / 3 张" in run.text and 'id="print-done"' in run.text
    volume = re.search(r'<ul id="volumes"><li><a href="(/documents/[^"]+/download)"', run.text).group(1)
    assert client.get(volume).content.startswith(b"%PDF")


def test_registering_a_supervisor_with_photo_and_article_9_attestations(console: Console) -> None:
    client = login(console, "haidian")
    form = client.get("/supervisors/new")
    number = h.new_id_number(dt.date(1975, 5, 6))
    data = {
        "csrf": csrf_of(form.text), "full_name": "孙督导", "gender": "M", "id_number": number,
        "birth_date": "1975-05-06", "phone": "13900000000", "attested_by": "海淀区鉴定所",
        "attested_date": "2026-01-05",
        "training_passed": "1", "training_date": "2026-01-10", **{f"att_{i}": "1" for i in range(1, 6)},
    }  # fmt: skip
    no_photo = client.post("/supervisors/new", data=data)
    assert no_photo.status_code == 400 and 'id="err-photo"' in no_photo.text
    done = client.post("/supervisors/new", data=data, files={"photo": ("sun.jpg", h.photo(), "image/jpeg")})
    assert done.status_code == 303, done.text
    page = client.get(done.headers["location"])
    assert "已登记：孙督导" in page.text and "未聘任" in page.text and number not in page.text  # ID masked
