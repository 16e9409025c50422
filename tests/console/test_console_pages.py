"""Issue #15's console pages: complaints (第二十二条(九)) listed, searched, received and investigated, linked to
the case they opened; the draw's pool (第二十条 双随机); "my dispatches"; the Annex 3 form with each item's
text as in Annex 3 on a phone (real Chromium), a 否 refused beside the field without a remark, the draft
kept in the browser."""

from __future__ import annotations

import datetime as dt
import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import wf_helpers as h

from bjsv.registry.v1 import supervision_pb2 as spb
from common.catalogues import annex3_checklists
from tests.console.conftest import INSTITUTION, Console
from tests.console.test_browser_story import CHROMEDRIVER, CHROMIUM, Browser
from tests.console.test_console_http import csrf_of, login

needs_chromium = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
    reason="Debian chromium + chromium-driver not installed (python3 deploy/bootstrap.py install installs them)",
)


def sup_of(console: Console, login_name: str) -> str:
    return next(sup for sup, name in console.supervisors.items() if name == login_name)


def dispatch_to(
    console: Console, title: str, team: list[str], day: dt.date, form: int = spb.SUPERVISION_FORM_ON_SITE
) -> str:
    """A plan on `day` with the team dispatched (records review: the day after), each on its own day."""
    plan = console.clients.sv.CreatePlan(spb.CreatePlanRequest(
        plan=h.plan_msg(INSTITUTION, day, title=title, candidates=60), client_request_id=h.request_id("pg-plan")),
        metadata=h.md(h.HAIDIAN)).plan  # fmt: skip
    d = spb.Dispatch(plan=plan.name, dispatching_agency="agencies/08", form=form)
    if form == spb.SUPERVISION_FORM_RECORDS_REVIEW:
        d.supervision_start_time.CopyFrom(h.at(day + dt.timedelta(days=1), 9))
        d.supervision_end_time.CopyFrom(h.at(day + dt.timedelta(days=1), 17))
    req = spb.CreateDispatchRequest(dispatch=d, selection=spb.TEAM_SELECTION_MANUAL, supervisors=team,
                                    client_request_id=h.request_id("pg-d"))  # fmt: skip
    return console.clients.sv.CreateDispatch(req, metadata=h.md(h.HAIDIAN)).dispatch.name


def row_of(page: str, table_id: str, needle: str) -> str:
    body = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return next(r for r in body.split("<tr") if needle in r)


def test_complaints_are_received_with_messages_beside_fields_listed_by_district_and_linked_to_their_case(
    console: Console,
) -> None:
    city, haidian, chaoyang = login(console, "city"), login(console, "haidian"), login(console, "chaoyang")
    form = city.get("/complaints/new")
    assert form.status_code == 200 and "北京某某电力技术有限公司" in form.text
    data = {"csrf": csrf_of(form.text), "client_request_id": "pg-cp-1"}
    refused = city.post("/complaints/new", data=data)
    assert refused.status_code == 400
    for field, message in (("source", "请填写举报来源"), ("subject_kind", "请选择被举报对象类别"),
                           ("content", "请填写举报内容")):  # fmt: skip
        assert f'id="err-{field}"' in refused.text and message in refused.text
    data |= {"source": "来信", "subject_kind": "institution", "subject_institution": INSTITUTION,
             "content": "考场内有人代考，监考人员未予制止"}  # fmt: skip
    received = city.post("/complaints/new", data=data)
    assert received.status_code == 303
    path = received.headers["location"].split("?")[0]
    detail = city.get(path)
    assert "考场内有人代考" in detail.text and "已受理" in detail.text and "未立案" in detail.text

    chaoyang_inst = h.institution(console.clients, "1100016101", "北京朝阳某某举报测试学校", "05")
    other = console.clients.sv.ReceiveComplaint(spb.ReceiveComplaintRequest(complaint=spb.Complaint(
        source="来电", subject=chaoyang_inst, content="朝阳考点考评员收取财物"), client_request_id="pg-cp-2"),
        metadata=h.md(h.CITY)).complaint  # fmt: skip
    every = city.get("/complaints")
    assert "考场内有人代考" in every.text and "朝阳考点考评员收取财物" in every.text and "共 2 件" in every.text
    assert "朝阳考点" not in city.get("/complaints", params={"q": "代考"}).text
    only_05 = city.get("/complaints", params={"district": "05"}).text
    assert "朝阳考点考评员收取财物" in only_05 and "考场内有人代考" not in only_05
    assert haidian.get("/complaints", params={"district": "05"}).status_code == 403  # not narrowed silently
    own = haidian.get("/complaints").text
    assert "考场内有人代考" in own and "朝阳考点考评员收取财物" not in own  # the registry scopes the list
    assert chaoyang.get(path).status_code == 403 and chaoyang.get(f"/{other.name}").status_code == 200
    assert haidian.post("/complaints/new", data={**data, "csrf": csrf_of(own)}).status_code == 403  # city's to receive

    case = console.clients.sv.OpenCase(spb.OpenCaseRequest(penalty_case=spb.PenaltyCase(
        subject_kind=spb.CASE_SUBJECT_KIND_INSTITUTION, subject=INSTITUTION, triggers=[spb.CASE_TRIGGER_FALSIFICATION],
        description="经核实存在代考"), client_request_id="pg-case"), metadata=h.md(h.HAIDIAN)).penalty_case  # fmt: skip
    page = haidian.get(path)
    close = {"csrf": csrf_of(page.text), "handling": "调阅考场录像", "close": "1"}
    missing = haidian.post(path, data=close)
    assert missing.status_code == 400 and 'id="err-result"' in missing.text and "请填写核实结果" in missing.text
    done = haidian.post(path, data={**close, "result": "举报属实", "penalty_case": case.name})
    assert done.status_code == 303
    closed = haidian.get(path).text
    assert "已办结" in closed and f'href="/{case.name}"' in closed and "handling-form" not in closed
    assert f'href="/{case.name}"' in row_of(city.get("/complaints").text, "complaints-table", path.lstrip("/"))


def test_the_draw_shows_seed_pool_drawn_team_and_why_a_member_was_excluded(console: Console) -> None:
    zhao = sup_of(console, "zhao")
    msg = h.plan_msg(INSTITUTION, dt.date(2026, 12, 11), title="2026年抽取池展示计划", candidates=60,
                     examiners=[h.person("赵督导", sup=zhao)])  # an examiner may not supervise (第十六条)  # fmt: skip
    plan = console.clients.sv.CreatePlan(spb.CreatePlanRequest(plan=msg, client_request_id="pg-pool"),
                                         metadata=h.md(h.HAIDIAN)).plan  # fmt: skip
    client = login(console, "haidian")
    page = client.get(f"/{plan.name}")
    drawn = client.post(f"/{plan.name}/propose", data={"csrf": csrf_of(page.text), "form": "ON_SITE",
                                                       "team_size": "2", "seed": "pool-page"})  # fmt: skip
    assert drawn.status_code == 200, drawn.text
    text = html.unescape(drawn.text)
    assert '<dd id="seed-shown">pool-page</dd>' in text
    assert re.search(r"可委派的督导员 3 人", text), text
    assert sorted(re.search(r'<dd id="team">([^<]*)</dd>', text).group(1).split("、")) == ["张督导", "王督导"]
    assert row_of(text, "pool-table", "张督导").count("抽中") == 1
    excluded = row_of(text, "pool-table", "赵督导")
    assert "排除：" in excluded and "第十六条" in excluded and zhao in excluded


def test_my_dispatches_lists_only_the_supervisors_own(console: Console) -> None:
    zhang, wang = sup_of(console, "zhang"), sup_of(console, "wang")
    dispatch_to(console, "2026年我的任务展示计划", [zhang, wang], dt.date(2026, 12, 9))
    assert "2026年我的任务展示计划" in login(console, "zhang").get("/my/dispatches").text
    assert "2026年我的任务展示计划" not in login(console, "zhao").get("/my/dispatches").text


def test_the_records_review_form_shows_the_16_item_texts_of_annex3(console: Console) -> None:
    zhang, wang = sup_of(console, "zhang"), sup_of(console, "wang")
    name = dispatch_to(
        console, "2026年资料督导表单计划", [zhang, wang], dt.date(2026, 12, 14), spb.SUPERVISION_FORM_RECORDS_REVIEW
    )
    page = html.unescape(login(console, "zhang").get(f"/my/{name}/record").text)
    items = annex3_checklists()["records_review"].items
    assert len(items) == 16 and "共 16 项" in page
    for item in items:
        assert f'<span class="item-no">{item.number}.</span> <span class="item-text">{item.text}</span>' in page
    assert "认定结果督导资料检查" in page and 'name="item_17"' not in page


@pytest.fixture(scope="module")
def shots() -> Iterator[Path]:
    path = Path(__file__).parent / "artifacts" / "screenshots-pages"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    yield path


@needs_chromium
def test_on_a_phone_the_annex3_form_shows_each_items_text_refuses_a_bare_no_and_keeps_the_draft(
    console: Console, shots: Path, tmp_path: Path
) -> None:
    zhang, wang = sup_of(console, "zhang"), sup_of(console, "wang")
    name = dispatch_to(console, "2026年现场督导表单计划", [zhang, wang], dt.date(2026, 12, 16))
    b = Browser(console, shots, "supervisor", tmp_path, phone=True)
    try:
        b.login("zhang")
        b.go(f"/my/{name}/record")
        items = annex3_checklists()["on_site"].items
        shown = [e.text for e in b.driver.find_elements("css selector", "fieldset.item .item-text")]
        assert len(items) == 17 and shown == [i.text for i in items]
        assert "共 17 项" in b.el("#item-count").text
        b.shot("annex3-texts", "#item-10")
        for n in range(1, 18):
            b.click(f"input[name=item_{n}][value={'NO' if n == 10 else 'YES'}]")
        url = b.driver.current_url
        b.click("#record-form button[type=submit]")
        assert "第10项选“否”时须在备注中说明情况" in b.el("#err-remark_10").text
        assert b.driver.current_url == url  # refused in the browser: nothing sent
        b.shot("remark-required", "#err-remark_10")
        b.fill("#remark_10", "考场须知未张贴")
        b.driver.refresh()  # a dropped connection: the draft comes back from the browser
        assert b.el("input[name=item_10][value=NO]").is_selected()
        assert b.el("#remark_10").get_attribute("value") == "考场须知未张贴"
    finally:
        b.quit()


@needs_chromium
def test_the_complaint_list_pages_and_searches_in_the_browser(console: Console, shots: Path, tmp_path: Path) -> None:
    for i in range(22):  # more than one page (20 a page)
        console.clients.sv.ReceiveComplaint(spb.ReceiveComplaintRequest(complaint=spb.Complaint(
            source="网上举报", subject=INSTITUTION, content=f"第{i + 1}号：考场秩序混乱"),
            client_request_id=f"pg-many-{i}"), metadata=h.md(h.CITY))  # fmt: skip
    b = Browser(console, shots, "city", tmp_path)
    try:
        b.login("city")
        b.go("/complaints")
        rows = b.driver.find_elements("css selector", "#complaints-table tbody tr")
        assert len(rows) == 20 and "第22号" in rows[0].text  # newest first
        b.shot("complaints")
        b.submit("a.button[href*=page_token]")
        assert "第2号" in b.el("#complaints-table").text and "第22号" not in b.el("#complaints-table").text
        b.fill("#q", "第7号")
        b.submit("#complaint-search button[type=submit]")
        rows = b.driver.find_elements("css selector", "#complaints-table tbody tr")
        assert len(rows) == 1 and "第7号：考场秩序混乱" in rows[0].text and "北京某某电力技术有限公司" in rows[0].text
        b.shot("complaint-search")
        b.submit("#complaints-table a")
        assert "第7号：考场秩序混乱" in b.el("#complaint-facts").text
    finally:
        b.quit()
