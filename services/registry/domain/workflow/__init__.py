"""Supervision workflow domain (issue #7): plans, dispatch, Annex 3 records, Annex 4 feedback, penalty
cases and half-month district reports (第十四条, 第十九条–第二十七条).

Pure Python: no gRPC, no SQL. Time comes in as dates/datetimes from a `common.clock.Clock`; working days
come from `common.workdays` (D5). Interpretation decisions are not kept here: the use cases read them from the
rule set in force or ask the rules service, and pass the values in (e.g. the period split, the case openings).
"""
