"""Domain types of the notify service: notification kinds, channels, drafts and timers."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from common.catalogues import district_table

CITY_CENTRE = "agencies/A"


def agency_name(agency: str) -> str:
    """ "agencies/08" → "海淀区鉴定管理机构"; "agencies/A" → "市鉴定管理中心" (the regulation's short names)."""
    code = agency.removeprefix("agencies/")
    if code == "A":
        return "市鉴定管理中心"
    district = district_table().get(code)
    return f"{district}鉴定管理机构" if district else agency


class Kind(enum.StrEnum):
    """What a notification is about (mirrors bjsv.notify.v1.NotificationKind)."""

    DISPATCH_CREATED = "dispatch_created"
    SUBMISSION_RECEIVED = "submission_received"
    DEADLINE_REMINDER = "deadline_reminder"
    DEADLINE_DUE_TODAY = "deadline_due_today"
    DEADLINE_OVERDUE = "deadline_overdue"
    IMMEDIATE_REPORT = "immediate_report"
    PERIOD_REPORT = "period_report"
    APPOINTMENT_EXPIRING = "appointment_expiring"
    AGE_LIMIT_IN_TERM = "age_limit_in_term"
    BADGE_FILED = "badge_filed"
    PENALTY_DECISION_PENDING = "penalty_decision_pending"
    COMPLAINT_RECEIVED = "complaint_received"
    MAJOR_PROBLEM_REPORTED = "major_problem_reported"


class Channel(enum.StrEnum):
    """Delivery channels. The inbox is written in the same transaction as the notification."""

    INBOX = "inbox"
    NATS = "nats"
    EMAIL = "email"


OUTBOUND_CHANNELS: tuple[Channel, ...] = (Channel.NATS, Channel.EMAIL)


class Form(enum.StrEnum):
    """The two forms of 第二十三条."""

    RECORD = "record"  # Annex 3 督导记录表, filled by the external supervisor
    FEEDBACK = "feedback"  # Annex 4 外督员情况反馈表, filled by the institution


FORM_TITLES: dict[Form, str] = {
    Form.RECORD: "《北京市职业技能等级认定督导记录表》（附件3）",
    Form.FEEDBACK: "《北京市技能人才评价外督员情况反馈表》（附件4）",
}


@dataclass(frozen=True)
class NotificationDraft:
    """A notification to put into ``recipient``'s inbox and send on the outbound channels.

    ``key`` is the idempotency key: a business key (kind, subject, recipient, date …), never a random id,
    so a redelivered event, a second replica or a restart cannot create a second notification.
    """

    key: str
    recipient: str
    kind: Kind
    title: str
    body: str
    articles: tuple[str, ...]
    subject: str
    due_date: dt.date | None = None
    document_id: str = ""
    channels: tuple[Channel, ...] = OUTBOUND_CHANNELS


@dataclass(frozen=True)
class TimerSpec:
    """A notification to create at ``fire_at`` unless its ``group`` is cancelled before."""

    key: str
    fire_at: dt.datetime
    group: str
    draft: NotificationDraft = field(repr=False)


@dataclass(frozen=True)
class FormDeadline:
    """A 第二十三条 deadline: ``owners`` must hand ``form`` for ``dispatch`` to the dispatching agency.

    The Annex 3 record is one per dispatch (the team signs it): ``about`` is empty and the owners are the
    active members. The Annex 4 feedback is one per external supervisor, owed by the institution:
    ``about`` is that supervisor and the owner is the institution.
    """

    dispatch: str
    form: Form
    owners: tuple[str, ...]
    owner_name: str
    dispatching_agency: str
    plan_name: str
    supervision_end: dt.date | None
    due_date: dt.date | None
    about: str = ""
    about_name: str = ""

    @property
    def group(self) -> str:
        return deadline_group(self.dispatch, self.form, self.about)

    @property
    def form_label(self) -> str:
        """The form's title, naming the supervisor for Annex 4."""
        title = FORM_TITLES[self.form]
        if self.form is Form.FEEDBACK and (self.about_name or self.about):
            return f"关于外督员{self.about_name or self.about}的{title}"
        return title


def deadline_group(dispatch: str, form: Form, about: str = "") -> str:
    """Timers of one deadline; cancelled together when the form arrives."""
    return f"deadline/{dispatch}/{form.value}/{about or 'team'}"


def appointment_group(supervisor: str) -> str:
    """Timers of a supervisor's current term; replaced on renewal."""
    return f"appointment/{supervisor}"


def case_group(case: str) -> str:
    """Timers of a penalty case awaiting decision; cancelled by the decision."""
    return f"case/{case}"


@dataclass(frozen=True)
class AppointmentTerm:
    """An appointment term (第十三条) with what the age check (第九条（五）, D6) needs."""

    supervisor: str
    supervisor_name: str
    appointing_org: str
    term_start: dt.date
    term_end: dt.date
    birth_date: dt.date | None
    gender: str  # "male" | "female" | ""
    renewal: bool = False
    # 第九条（五） limit for this gender in the rule set in force (D6), as the registry's event carries it
    age_limit_years: int | None = None


@dataclass(frozen=True)
class AlertDraft:
    """An operator alert (e.g. CALENDAR_NOT_COVERED); ``key`` makes it idempotent."""

    key: str
    code: str
    message: str
    subject: str = ""
    year: int = 0


@dataclass
class Reaction:
    """Everything one event causes, applied in one transaction with the event's idempotency mark."""

    notifications: list[NotificationDraft] = field(default_factory=list)
    timers: list[TimerSpec] = field(default_factory=list)
    cancel_groups: list[str] = field(default_factory=list)
    cancel_group_prefixes: list[str] = field(default_factory=list)
    alerts: list[AlertDraft] = field(default_factory=list)
    # deadlines that could not be scheduled for lack of a calendar; retried when one is configured
    blocked: list[FormDeadline] = field(default_factory=list)
    # notification key -> request to render its attachment (e.g. serialized DistrictReportData)
    attachment_requests: dict[str, bytes] = field(default_factory=dict)

    def extend(self, other: Reaction) -> None:
        self.notifications += other.notifications
        self.timers += other.timers
        self.cancel_groups += other.cancel_groups
        self.cancel_group_prefixes += other.cancel_group_prefixes
        self.alerts += other.alerts
        self.blocked += other.blocked
        self.attachment_requests.update(other.attachment_requests)
