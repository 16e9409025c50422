"""The Annex 3 checklist declaration: counts, numbering, sections and wording (附件3, 第二十一条, 第二十二条)."""

from services.documents.domain import annex3


def test_on_site_checklist_has_17_numbered_items_in_annex_sections_art21():
    items = annex3.ON_SITE.items
    assert [i.number for i in items] == list(range(1, 18))
    assert [(label, [i.number for i in g]) for label, g in annex3.groups(items, "subsection")] == [
        ("政策制度执行情况/", [1, 2]),
        ("考前督导检查/评价计划", [3, 4]),
        ("考前督导检查/资格审核", [5]),
        ("考前督导检查/人员安排", [6, 7]),
        ("考前督导检查/现场布置", [8, 9, 10]),
        ("考中督导检查/人员履职", [11, 12]),
        ("考中督导检查/认定过程", [13, 14, 15]),
        ("考中督导检查/评分过程", [16, 17]),
    ]


def test_records_review_checklist_has_16_numbered_items_in_annex_sections_art22():
    items = annex3.RECORDS_REVIEW.items
    assert [i.number for i in items] == list(range(1, 17))
    assert [(label, [i.number for i in g]) for label, g in annex3.groups(items, "subsection")] == [
        ("政策制度执行情况/", [1, 2]),
        ("认定前资料督导检查/评价计划", [3, 4]),
        ("认定前资料督导检查/人员履职", [5, 6, 7]),
        ("认定过程督导检查/考生信息", [8]),
        ("认定过程督导检查/认定过程", [9, 10, 11, 12]),
        ("认定过程督导检查/评分过程", [13, 14]),
        ("认定结果督导资料检查/结果评定", [15, 16]),
    ]


def test_item_wording_matches_domain_reading_including_fixed_typo_in_on_site_item_10():
    assert annex3.ON_SITE.item(10).text == "考核现场张贴考场须知等相关要求,醒目,便于考生知晓"
    assert annex3.ON_SITE.item(1).text == annex3.RECORDS_REVIEW.item(1).text
    assert annex3.RECORDS_REVIEW.item(12).text == "被督导单位配合外督员人员工作"
    assert annex3.ON_SITE.item(17).numbered_text == "17. 评价过程进行录像、拍照有影像资料"


def test_catalogue_is_one_data_file_read_by_documents_and_the_registry_workflow_annex3():
    """Issue #11 item 5: the 17/16 items are declared once (common/catalogues/annex3.yaml) and both services
    read that declaration; no service imports another service's code for it."""
    import ast
    from pathlib import Path

    import yaml

    from common.catalogues import ANNEX3_FILE
    from services.registry.domain.workflow import checklists
    from services.registry.domain.workflow.model import SupervisionForm

    data = yaml.safe_load(ANNEX3_FILE.read_text(encoding="utf-8"))
    assert [len(data[k]["items"]) for k in ("on_site", "records_review")] == [17, 16]
    for form, checklist in (
        (SupervisionForm.ON_SITE, annex3.ON_SITE),
        (SupervisionForm.RECORDS_REVIEW, annex3.RECORDS_REVIEW),
    ):
        assert [checklists.item_text(form, n) for n in checklists.item_numbers(form)] == [
            row["text"] for row in data[form.value]["items"]
        ]
        assert [i.text for i in checklist.items] == [row["text"] for row in data[form.value]["items"]]
    services = Path(__file__).resolve().parents[2] / "services"
    crossings = []
    for path in services.rglob("*.py"):
        own = path.relative_to(services).parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            crossings += [f"{path}: {n}" for n in names if n.startswith("services.") and n.split(".")[1] != own]
    assert crossings == []
