"""The Annex 3 checklists as the workflow sees them: item numbers and texts per form.

The item texts are declared once, as data, in `common/catalogues/annex3.yaml` (the documents service
prints them from the same file); this module only maps our form enum onto that declaration so records,
findings and reports cite exactly the printed wording.
"""

from __future__ import annotations

from common.catalogues import annex3_checklists
from services.registry.domain.workflow.model import SupervisionForm

_CHECKLISTS = {form: annex3_checklists()[form.value] for form in SupervisionForm}


def item_count(form: SupervisionForm) -> int:
    """17 on-site items (第二十一条), 16 records-review items (第二十二条)."""
    return len(_CHECKLISTS[form].items)


def item_numbers(form: SupervisionForm) -> range:
    return _CHECKLISTS[form].numbers


def item_text(form: SupervisionForm, number: int) -> str:
    return _CHECKLISTS[form].item(number).text
