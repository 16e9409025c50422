"""The two Annex 3 checklists (附件3 北京市职业技能等级认定督导记录表) as ONE data declaration.

Both the PDF and the DOCX renderers read this module, and the registry's record validation is meant to
use it too (17 on-site items, 第二十一条; 16 records-review items, 第二十二条). Wording is copied from
`shared/spec/domain.md`, which fixes the annex's OCR typo in on-site item 10 (考场须 → 考场须知).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

FORM_TITLE = "北京市职业技能等级认定督导记录表"

HEADER_INSTITUTION = "被督导评价机构"
HEADER_PLAN = "评价计划名称"
HEADER_METHOD = "认定形式"
COLUMN_CONTENT = "督导内容"
COLUMN_RESULT = "督导结果"
COLUMN_REMARK = "备注"
YES = "是"
NO = "否"
FOOTER_OPINION = "意见"
FOOTER_PROBLEMS = "存在问题："
FOOTER_SUPERVISOR_SIGNATURE = "外督员签名："
FOOTER_DATE = "年　　月　　日"
FOOTER_HEAD_SIGNATURE = "机构负责人签字："

NOTES: tuple[str, ...] = (
    "注：1. 所有项目均为勾选项，请在与事实相符的选项后打勾，督导发现问题按序号在“备注”栏进行说明。",
    "2. 请于督导工作结束后5个工作日内向委派机构反馈督导情况。",
)


class ChecklistKind(StrEnum):
    """第十九条: the two forms of supervision."""

    ON_SITE = "on_site"
    RECORDS_REVIEW = "records_review"


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    number: int
    section: str
    subsection: str  # "" when the section has no subsection (政策制度执行情况)
    text: str

    @property
    def numbered_text(self) -> str:
        return f"{self.number}. {self.text}"


@dataclass(frozen=True, slots=True)
class Checklist:
    kind: ChecklistKind
    subtitle: str
    items: tuple[ChecklistItem, ...]

    def item(self, number: int) -> ChecklistItem:
        return self.items[number - 1]

    @property
    def numbers(self) -> range:
        return range(1, len(self.items) + 1)


_POLICY = "政策制度执行情况"
_ITEM_1 = "贯彻执行有关法律法规、规章和有关政策及其质量管理体系建设等情况"
_ITEM_2 = "执行考务、题库/卷库、人员管理、证书等管理办法情况"


def _items(rows: list[tuple[str, str, str]]) -> tuple[ChecklistItem, ...]:
    return tuple(ChecklistItem(i, s, sub, t) for i, (s, sub, t) in enumerate(rows, start=1))


ON_SITE = Checklist(
    kind=ChecklistKind.ON_SITE,
    subtitle="（现场督导）",
    items=_items(
        [
            (_POLICY, "", _ITEM_1),
            (_POLICY, "", _ITEM_2),
            ("考前督导检查", "评价计划", "理论知识考试、技能操作考核、综合评审等评价方式与备案方案内容一致"),
            ("考前督导检查", "评价计划", "评价时间、评价人数及评价内容与评价计划一致"),
            ("考前督导检查", "资格审核", "对认定对象进行资格条件复核抽查合格"),
            ("考前督导检查", "人员安排", "考评人员、考务人员、内督员的安排合理与评价计划一致"),
            ("考前督导检查", "人员安排", "考评人员、考务人员、内督员和工作人员配备数量及分工合理"),
            (
                "考前督导检查",
                "现场布置",
                "评价现场环境符合各项要求(安静、整洁、通风、灯光、防火、考场防疫与安全出口标识等)",
            ),
            (
                "考前督导检查",
                "现场布置",
                "考核现场仪器设备、材料和工具符合本次评价需求考场布置规范且科学、有备用考场及设施",
            ),
            ("考前督导检查", "现场布置", "考核现场张贴考场须知等相关要求,醒目,便于考生知晓"),
            ("考中督导检查", "人员履职", "考评人员、考务人员、内督员认真履行职责,有工作记录表"),
            ("考中督导检查", "人员履职", "现场工作人员全程佩带相应工作证卡"),
            ("考中督导检查", "认定过程", "考试开始/结束时间与评价计划报备一致"),
            ("考中督导检查", "认定过程", "按要求核对考生的证件信息、做好考生签到与考场记录"),
            ("考中督导检查", "认定过程", "抽查考生信息与此次评价计划一致"),
            ("考中督导检查", "评分过程", "评价现场秩序有序"),
            ("考中督导检查", "评分过程", "评价过程进行录像、拍照有影像资料"),
        ]
    ),
)

RECORDS_REVIEW = Checklist(
    kind=ChecklistKind.RECORDS_REVIEW,
    subtitle="（事后认定材料督导）",
    items=_items(
        [
            (_POLICY, "", _ITEM_1),
            (_POLICY, "", _ITEM_2),
            ("认定前资料督导检查", "评价计划", "理论知识考试、技能操作考核、综合评审等评价方式与实施方案一致"),
            ("认定前资料督导检查", "评价计划", "评价时间、评价人数及评价内容与评价计划一致"),
            ("认定前资料督导检查", "人员履职", "认定机构负责人有履职情况记录"),
            ("认定前资料督导检查", "人员履职", "考评人员、考务人员、内督员的安排合理与评价计划一致"),
            ("认定前资料督导检查", "人员履职", "考评人员、考务人员、内督员认真履行职责，有工作记录表"),
            ("认定过程督导检查", "考生信息", "复核抽查考生资格信息合格"),
            ("认定过程督导检查", "认定过程", "考试开始、结束时间与评价计划报备一致"),
            ("认定过程督导检查", "认定过程", "按要求核对考生的证件信息、做好考生签到与考场记录"),
            ("认定过程督导检查", "认定过程", "评价过程有影像资料"),
            ("认定过程督导检查", "认定过程", "被督导单位配合外督员人员工作"),
            ("认定过程督导检查", "评分过程", "评分过程符合规范要求，有评分记录表"),
            ("认定过程督导检查", "评分过程", "有考评人员对实操评分签名确认"),
            ("认定结果督导资料检查", "结果评定", "评价机构对评价结果进行公示"),
            (
                "认定结果督导资料检查",
                "结果评定",
                "按规定保存考核结果及相关资料(评分表、考场情况记录单、考件等); 档案资料完整, 管理规范有序",
            ),
        ]
    ),
)

CHECKLISTS: dict[ChecklistKind, Checklist] = {ON_SITE.kind: ON_SITE, RECORDS_REVIEW.kind: RECORDS_REVIEW}


def groups(items: tuple[ChecklistItem, ...], key: str) -> list[tuple[str, list[ChecklistItem]]]:
    """Consecutive runs of items sharing `section` or (section, subsection) — the table's merged cells."""
    out: list[tuple[str, list[ChecklistItem]]] = []
    for item in items:
        label = item.section if key == "section" else f"{item.section}/{item.subsection}"
        if out and out[-1][0] == label:
            out[-1][1].append(item)
        else:
            out.append((label, [item]))
    return out


# Annex 4 (附件4 北京市技能人才评价外督员情况反馈表), D12.
FEEDBACK_TITLE = "北京市技能人才评价外督员情况反馈表"
FEEDBACK_REPORTING_UNIT = "填报单位（盖章/签字）："
FEEDBACK_SUPERVISOR_NAME = "外督员姓名"
FEEDBACK_ENTRY_TIME = "外督员进场时间"
FEEDBACK_EXIT_TIME = "外督员离场时间"
FEEDBACK_SITUATION = "工作反馈情况："
# The three structured answers of D12; wording from 第十七条 and 第二十七条.
FEEDBACK_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("badge_worn", "执行督导任务时佩戴《技能人才评价质量督导员证卡》"),
    ("duties_performed", "认真履行质量督导职责"),
    ("integrity_kept", "遵守廉洁纪律，未利用职务谋取私利"),
)
