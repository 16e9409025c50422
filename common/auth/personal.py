"""Personal information (个人信息保护法): masking for callers who do not need it, and the audit call point
for reading it in full. ID numbers keep their own mask in the registry's domain (region and check digits).
"""

from __future__ import annotations

import logging

from common.context import current_caller

log = logging.getLogger("bjsv.personal")


def mask_phone(phone: str) -> str:
    """13812345678 → 138****5678; short numbers keep only their last two digits."""
    p = phone.strip()
    if len(p) <= 4:
        return "*" * len(p)
    if len(p) < 8:
        return "*" * (len(p) - 2) + p[-2:]
    return p[:3] + "*" * (len(p) - 7) + p[-4:]


def mask_email(email: str) -> str:
    """zhang.san@example.cn → z***@example.cn"""
    user, at, domain = email.partition("@")
    return f"{user[:1]}***{at}{domain}" if at else "***"


def audit_full_read(resource: str, fields: tuple[str, ...]) -> None:
    """THE call point for 'personal information read in full' (issue #12, item 4). It records who read
    which fields of which resource — never the values. The tamper-evident audit chain (common/audit.py,
    issue #12 item 5) appends its entry here."""
    caller = current_caller()
    log.info(
        "personal data read resource=%s fields=%s subject=%s org=%s",
        resource,
        ",".join(fields),
        caller.subject,
        caller.org,
    )
