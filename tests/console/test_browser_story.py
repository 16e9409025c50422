"""The three-user story in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
a district official plans 250 candidates, draws and dispatches a team (seed shown); the supervisor, on a
phone-sized screen, fills the records-review Annex 3 with item 12 = 否 and a remark; the institution gives
Annex 4 feedback; the official sees the case with its recommendation (第二十六条), decides, and downloads the
Annex 3 PDF. Refused actions show their message (the dispatch its article). One screenshot per step is kept
in tests/console/artifacts/screenshots/ (gitignored; replaced on each run). The console serves HTTPS with the
stack's certificate: Chromium trusts exactly that key (its SPKI pin), not every certificate."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import wf_helpers as h
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from bjsv.registry.v1 import supervision_pb2 as spb
from common.clock import SHANGHAI
from tests.console.conftest import INSTITUTION, PASSWORD, Console

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PLAN_TITLE = "2026年第四期电工（四级）职业技能等级认定"
REMARK_12 = "被督导单位拒绝提供考场录像和评分记录表"

pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
    reason="Debian chromium + chromium-driver not installed (python3 deploy/bootstrap.py install installs them)",
)


def spki_pin(console: Console) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of the console's certificate, as Chromium's pin list wants it."""
    cert = x509.load_pem_x509_certificate((Path(console.ca).parent / "console.crt").read_bytes())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class Browser:
    """One user's browser; `shot` keeps a numbered screenshot of each step."""

    def __init__(self, console: Console, shots: Path, who: str, downloads: Path, phone: bool = False) -> None:
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=zh-CN",
                    f"--ignore-certificate-errors-spki-list={spki_pin(console)}"):  # fmt: skip
            opts.add_argument(arg)
        if phone:
            opts.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844,
                                                                              "pixelRatio": 2}})  # fmt: skip
        else:
            opts.add_argument("--window-size=1280,1000")
        opts.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
        self.driver: WebDriver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
        behaviour = {"behavior": "allow", "downloadPath": str(downloads)}
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior", behaviour)
        self.base, self.shots, self.who = console.url, shots, who

    def go(self, path: str) -> None:
        self.driver.get(self.base + path)

    def el(self, css: str):
        try:
            return WebDriverWait(self.driver, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))
        except TimeoutException:
            self.shot("failed")
            text = self.driver.find_element(By.TAG_NAME, "body").text
            raise AssertionError(f"{css} not on {self.driver.current_url}; the page says:\n{text}") from None

    def fill(self, css: str, value: str) -> None:
        """Typed like a user; date and time inputs set directly (their typing order depends on the locale)."""
        el = self.el(css)
        if el.get_attribute("type") in ("date", "datetime-local"):
            self.driver.execute_script("arguments[0].value = arguments[1]", el, value)
        else:
            el.clear()
            el.send_keys(value)

    def click(self, css: str) -> None:
        self.el(css).click()

    def submit(self, css: str) -> None:
        """Click and wait for the next page: an element present on both pages is then read from the new one."""
        old = self.el("html")
        self.click(css)
        WebDriverWait(self.driver, 20).until(ec.staleness_of(old))

    def text(self) -> str:
        return self.el("body").text

    def login(self, username: str) -> None:
        self.go("/login")
        self.fill("#username", username)
        self.fill("#password", PASSWORD)
        self.click("main form button[type=submit]")
        WebDriverWait(self.driver, 20).until(lambda d: "/login" not in d.current_url)

    def shot(self, step: str, at: str = "") -> None:
        """Screenshot of the step, scrolled to the element it is about."""
        if at:
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", self.el(at))
        n = len(list(self.shots.glob("*.png"))) + 1
        self.driver.save_screenshot(str(self.shots / f"{n:02d}-{self.who}-{step}.png"))

    def quit(self) -> None:
        self.driver.quit()


def eventually(fn: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def shots() -> Iterator[Path]:
    path = Path(__file__).parent / "artifacts" / "screenshots"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    yield path
    print(f"\nscreenshots: {path}")


def test_three_users_story(console: Console, shots: Path, tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    official = Browser(console, shots, "official", downloads)
    try:
        plan_path = official_plans_and_dispatches(official)
        dispatch = dispatched(console, plan_path)
        console.set_clock(dt.datetime(2026, 12, 3, 10, tzinfo=SHANGHAI))
        supervisor_records(console, shots, downloads, dispatch)
        institution_feedback(console, shots, downloads, dispatch)
        case_path = official_sees_the_case(official)
        city_decides_and_downloads(Browser(console, shots, "city", downloads), case_path, downloads)
    finally:
        official.quit()


def official_plans_and_dispatches(b: Browser) -> str:
    b.login("haidian")
    b.shot("dashboard")
    b.go("/plans/new")
    Select(b.el("#institution")).select_by_value(INSTITUTION)
    b.fill("#title", PLAN_TITLE)
    b.fill("#occupation", "电工（四级/中级工）")
    b.fill("#candidate_count", "250")
    b.click("input[name=mode_THEORY_EXAM]")
    b.click("input[name=mode_SKILL_OPERATION]")
    b.fill("#s0-id", "S1")
    b.fill("#s0-venue", "第一考场")
    b.fill("#s0-start", "2026-12-01T09:00")
    b.fill("#s0-end", "2026-12-01T11:30")
    b.fill("#s0-ex", f"钱考评,{h.new_id_number(dt.date(1980, 1, 1))}")
    b.shot("plan-form")
    b.click("main form button[type=submit]")
    b.el("#propose-form")
    assert PLAN_TITLE in b.text() and "250" in b.text()
    plan_path = b.driver.current_url.removeprefix(b.base)
    b.shot("plan-created")

    # A refused action shows each finding with its article: one supervisor is not a team (第二十条).
    b.driver.execute_script("document.getElementById('m-form').value = 'RECORDS_REVIEW'")
    b.click("#m-sups input[type=checkbox]")
    b.fill("#m-start", "2026-12-02T09:00")
    b.fill("#m-end", "2026-12-02T17:00")
    b.click("#manual-form button[type=submit]")
    assert "第二十条" in b.el("#refusal").text
    b.shot("dispatch-refused", "#refusal")

    b.go(plan_path)
    b.driver.execute_script("document.getElementById('form').value = 'RECORDS_REVIEW'")
    b.fill("#team_size", "2")
    b.fill("#seed", "story-2026-12")
    b.fill("#supervision_start_time", "2026-12-02T09:00")
    b.fill("#supervision_end_time", "2026-12-02T17:00")
    b.click("#propose-form button[type=submit]")
    assert b.el("#seed-shown").text == "story-2026-12"
    assert "第" in b.el("#proposal").text  # the D7 advice (250 candidates) cites its article
    b.shot("draw", "#proposal")
    b.click("#dispatch-form button[type=submit]")
    assert "已委派" in b.el("#dispatched").text
    b.shot("dispatched", "#dispatched")
    return plan_path


def dispatched(console: Console, plan_path: str) -> spb.Dispatch:
    req = spb.ListDispatchesRequest(plan=plan_path.strip("/"))
    (d,) = console.clients.sv.ListDispatches(req, metadata=h.md(h.HAIDIAN)).dispatches
    assert d.seed == "story-2026-12" and len(d.members) == 2
    return d


def supervisor_records(console: Console, shots: Path, downloads: Path, d: spb.Dispatch) -> None:
    first = d.members[0].supervisor
    b = Browser(console, shots, "supervisor", downloads, phone=True)
    try:
        b.login(console.supervisors[first])
        assert PLAN_TITLE in b.el("#my-dispatches").text
        b.shot("my-dispatches")
        b.click("#my-dispatches a.button")  # 第十六条: the declaration comes first
        b.click("#conflicts-form button[type=submit]")  # neither a relation nor the confirmation: refused
        assert "第十六条" in b.el("#err-none").text
        b.click("#none")
        b.shot("conflicts-declared")
        b.click("#conflicts-form button[type=submit]")
        assert "已申报回避事项" in b.el("#declared").text
        b.el("#record-form")
        for n in range(1, 12):
            b.click(f"input[name=item_{n}][value=YES]")
        b.driver.refresh()  # a dropped connection: the draft comes back from the browser
        assert b.el("input[name=item_5][value=YES]").is_selected()
        for n in range(12, 17):
            b.click(f"input[name=item_{n}][value={'NO' if n == 12 else 'YES'}]")
        b.click("main form button[type=submit]")  # 否 without a remark: refused beside the item
        assert "第12项选“否”时须在备注中说明情况" in b.el("#err-remark_12").text
        b.shot("remark-required", "#err-remark_12")
        b.fill("#remark_12", REMARK_12)
        b.fill("#problems", "被督导单位未配合调阅资料，已当场提出督导意见。")
        b.fill("#signatures", " ".join(m.display_name for m in d.members))
        b.fill("#institution_head_signature", "李主任")
        b.fill("#sign_date", "2026-12-03")
        b.shot("annex3-filled")
        b.click("main form button[type=submit]")
        receipt = b.el("#receipt").text
        assert d.record_due_date in receipt and REMARK_12 in receipt
        b.shot("receipt")
    finally:
        b.quit()


def institution_feedback(console: Console, shots: Path, downloads: Path, d: spb.Dispatch) -> None:
    b = Browser(console, shots, "institution", downloads)
    try:
        b.login("dianli")
        b.shot("plans")
        b.click("a.button[href^='/institution/feedback/']")
        b.fill("#entry_time", "2026-12-02T08:50")
        b.fill("#exit_time", "2026-12-02T17:10")
        for key in ("badge_worn", "duties_performed", "integrity_kept"):
            b.click(f"input[name={key}][value=YES]")
        b.fill("#comments", "认真履职")
        b.fill("#signed_by", "李主任")
        b.shot("annex4")
        b.click("main form button[type=submit]")
        assert d.feedback_due_date in b.el("#receipt").text
        b.shot("annex4-receipt")
    finally:
        b.quit()


def official_sees_the_case(b: Browser) -> str:
    """The district official sees the case and its recommendation; deciding is the city centre's (D13)."""
    b.go("/cases")
    b.click("#cases-table a")
    assert "通报批评并责令改正" in b.el("#recommendation").text and "第二十六条" in b.text()
    b.shot("case", "#recommendation")
    case_path = b.driver.current_url.removeprefix(b.base)
    b.fill("#official", "海淀区鉴定所 张科长")
    b.click("#decision-form button[type=submit]")
    assert "市鉴定管理中心" in b.el("#refusal").text
    b.shot("decision-refused", "#refusal")
    return case_path


def city_decides_and_downloads(b: Browser, case_path: str, downloads: Path) -> None:
    try:
        b.login("city")
        b.go(case_path)
        b.fill("#official", "市鉴定管理中心 刘主任")
        b.fill("#correction_deadline", "2026-12-10")
        b.submit("#decision-form button[type=submit]")
        assert "整改中" in b.el("#case-state").text
        b.shot("decided")
        download_annex3(b, downloads)
    finally:
        b.quit()


def download_annex3(b: Browser, downloads: Path) -> None:
    source = b.el("dd a[href^='/documents?subject=records']")
    source.click()

    def pdf_listed() -> bool:
        b.driver.refresh()
        return bool(b.driver.find_elements(By.CSS_SELECTOR, "a.download[data-format=PDF]"))

    eventually(pdf_listed)
    b.shot("documents")
    b.click("a.download[data-format=PDF]")
    eventually(lambda: any(p.suffix == ".pdf" for p in downloads.iterdir()))
    pdf = next(p for p in downloads.iterdir() if p.suffix == ".pdf")
    assert pdf.read_bytes().startswith(b"%PDF")


def test_grpc_is_only_reached_as_the_user(console: Console) -> None:
    """The console adds no privilege: a refusal from the service is what the user sees (here NOT_FOUND)."""
    with pytest.raises(grpc.RpcError):
        console.clients.sv.GetPlan(spb.GetPlanRequest(name="plans/999999"), metadata=h.md(h.HAIDIAN))
