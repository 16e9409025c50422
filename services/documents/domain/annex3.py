"""The two Annex 3 checklists (附件3 北京市职业技能等级认定督导记录表) and the fixed words of Annexes 3 and 4.

The items (17 on-site, 第二十一条; 16 records review, 第二十二条) are declared once, as data, in
`common/catalogues/annex3.yaml`, which the registry workflow reads too; this module adds the form's printed
labels and notes. Both the PDF and the DOCX renderers read it.
"""

from __future__ import annotations

from enum import StrEnum

from common.catalogues import Checklist, ChecklistItem, annex3_checklists

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
    """第十九条: the two forms of supervision (the keys of the catalogue file)."""

    ON_SITE = "on_site"
    RECORDS_REVIEW = "records_review"


ON_SITE = annex3_checklists()[ChecklistKind.ON_SITE]
RECORDS_REVIEW = annex3_checklists()[ChecklistKind.RECORDS_REVIEW]

CHECKLISTS: dict[ChecklistKind, Checklist] = {kind: annex3_checklists()[kind] for kind in ChecklistKind}


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


# Annex 4 (附件4 北京市技能人才评价外督员情况反馈表) as the regulation prints it: title, 填报单位 line, the
# table (外督员姓名 / 进场时间 / 离场时间 / 工作反馈情况) and the note below it, word for word.
FEEDBACK_TITLE = "北京市技能人才评价外督员情况反馈表"
FEEDBACK_REPORTING_UNIT = "填报单位（盖章/签字）："
FEEDBACK_SUPERVISOR_NAME = "外督员姓名"
FEEDBACK_ENTRY_TIME = "外督员进场时间"
FEEDBACK_EXIT_TIME = "外督员离场时间"
FEEDBACK_SITUATION = "工作反馈情况："
FEEDBACK_NOTE = (
    "注：“反馈情况”请对外督员工作过程中是否佩戴督导员证卡、是否认真履行职责是否自觉遵守廉洁纪律等情况进行意见反馈。"
)
# What the project adds to the form (D12): three yes/no answers taken from the note's own words, printed
# under a heading that says they are an addition, never in place of the law's text.
FEEDBACK_ADDITIONS_HEADING = "（以下为本系统增列的结构化选项，非附件4原文；问题取自表注）"
FEEDBACK_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("badge_worn", "是否佩戴督导员证卡"),
    ("duties_performed", "是否认真履行职责"),
    ("integrity_kept", "是否自觉遵守廉洁纪律"),
)
FEEDBACK_SIGNED_BY = "签字："
