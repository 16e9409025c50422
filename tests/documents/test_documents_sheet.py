"""A4 print sheets: imposition, long-edge duplex alignment, crop marks, index, volumes, streaming."""

from __future__ import annotations

import pytest
from documents_helpers import PT_PER_MM, fonts, lines_of, page_sizes_mm, plumber, sample_badge

from services.documents.domain import sheet as sheet_mod
from services.documents.domain.badge import CARD_H, CARD_W
from services.documents.domain.sheet import render_print_sheets, slot_origin

PHOTO = sample_badge().photo
SEAL = sample_badge().issuer_seal


def badges(n):
    for i in range(n):
        yield sample_badge(
            code=f"R1122A{i + 1:03d}", holder_name=f"督导员{i + 1}", photo=PHOTO, issuer_seal=SEAL, issuer_logo=SEAL
        )


def payload(b):
    return f"TEST-{b.code}"


def codes_by_slot(page, back: bool) -> dict[int, str]:
    """Which code sits in which slot, read from the page's chars by position."""
    out = {}
    for slot in range(4):
        x, y = slot_origin(slot, back=back)
        top = page.height - (y + CARD_H)
        crop = page.crop((x, top, x + CARD_W, top + CARD_H))
        text = crop.extract_text() or ""
        for word in text.split():
            for token in word.replace("：", " ").split():
                if token.startswith("R1122A"):
                    out[slot] = token
    return out


def test_ten_badges_make_three_a4_sheets_fronts_and_backs_alternating():
    (vol,) = list(render_print_sheets(badges(10), payload))
    assert vol.badge_count == 10 and vol.sheet_count == 3
    assert page_sizes_mm(vol.pdf) == [(210.0, 297.0)] * 6
    assert all(f["embedded"] for f in fonts(vol.pdf))
    pdf = plumber(vol.pdf)
    fronts = [t for _, t in lines_of(pdf.pages[0])]
    assert any("正面" in t for t in fronts)
    assert any("反面" in t for _, t in lines_of(pdf.pages[1]))


def test_each_back_lands_behind_its_front_for_long_edge_duplex():
    (vol,) = list(render_print_sheets(badges(4), payload))
    pdf = plumber(vol.pdf)
    front = codes_by_slot(pdf.pages[0], back=False)
    back = codes_by_slot(pdf.pages[1], back=True)
    assert front == {0: "R1122A001", 1: "R1122A002", 2: "R1122A003", 3: "R1122A004"}
    assert back == front
    # long-edge flip mirrors x: a back slot's x equals page width − front x − card width
    for slot in range(4):
        fx, fy = slot_origin(slot, back=False)
        bx, by = slot_origin(slot, back=True)
        assert bx == pytest.approx(sheet_mod.PAGE_W - fx - CARD_W) and by == fy
    # and the back of slot 0 is physically on the right of the back page
    back_chars = [c for c in pdf.pages[1].chars if c["text"] == "R"]
    assert back_chars


def test_cards_have_crop_marks_at_every_corner_outside_the_card():
    (vol,) = list(render_print_sheets(badges(4), payload))
    page = plumber(vol.pdf).pages[0]
    marks = [
        ln
        for ln in page.lines
        if abs(ln["x1"] - ln["x0"]) == pytest.approx(3 * PT_PER_MM, abs=0.01)
        or abs(ln["bottom"] - ln["top"]) == pytest.approx(3 * PT_PER_MM, abs=0.01)
    ]
    assert len(marks) == 4 * 4 * 2
    for slot in range(4):
        x, y = slot_origin(slot, back=False)
        top = page.height - (y + CARD_H)
        for ln in marks:  # no mark enters a card
            inside_x = x + 0.01 < (ln["x0"] + ln["x1"]) / 2 < x + CARD_W - 0.01
            inside_y = top + 0.01 < (ln["top"] + ln["bottom"]) / 2 < top + CARD_H - 0.01
            assert not (inside_x and inside_y)


def test_sheet_and_slot_index_is_printed_in_stable_input_order():
    (vol,) = list(render_print_sheets(badges(6), payload, title="2026年第1批"))
    pdf = plumber(vol.pdf)
    text = [t for p in pdf.pages for _, t in lines_of(p)]
    assert any("2026年第1批" in t and "第1张 正面" in t and "R1122A001 – R1122A004" in t for t in text)
    assert any("第2张 反面" in t and "R1122A005 – R1122A006" in t for t in text)
    labels = {c["text"] for c in pdf.pages[2].chars if c["size"] == 6}
    assert {"2", "-", "1"} <= labels
    assert vol.codes == tuple(f"R1122A{i:03d}" for i in range(1, 7))


def test_volumes_split_the_run_and_badges_are_consumed_lazily():
    consumed = []

    def source():
        for b in badges(10):
            consumed.append(b.code)
            yield b

    progress = []
    it = render_print_sheets(
        source(), payload, max_badges_per_volume=4, on_progress=lambda d, s: progress.append((d, s))
    )
    first = next(it)
    assert first.badge_count == 4 and first.number == 1
    assert len(consumed) <= 8  # the generator is read one volume at a time, never all at once
    rest = list(it)
    assert [v.badge_count for v in rest] == [4, 2]
    assert [v.first_badge for v in [first, *rest]] == [0, 4, 8]
    assert progress[-1] == (10, 3)


def test_empty_run_yields_nothing_and_print_sheet_is_deterministic():
    assert list(render_print_sheets(iter(()), payload)) == []
    a = next(iter(render_print_sheets(badges(5), payload))).pdf
    b = next(iter(render_print_sheets(badges(5), payload))).pdf
    assert a == b
