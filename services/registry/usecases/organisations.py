"""Agencies (附件1 表3: the city centre and the districts) and institutions (评价机构)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from common.api import Page
from common.errors import AlreadyExists
from services.registry.domain.images import CheckedImage
from services.registry.domain.institutions import InstitutionDraft
from services.registry.storage import models as m
from services.registry.storage import repository as repo
from services.registry.usecases.context import Listing, RegistryContext, listing
from services.registry.usecases.errors import found

T = TypeVar("T")


def create_institution(
    session: Session, *, draft: InstitutionDraft, seal: CheckedImage | None = None,
    logo: CheckedImage | None = None, now: dt.datetime,
) -> m.Institution:  # fmt: skip
    """Register an institution; its number — and the last four digits internal badge codes carry — is unique."""
    if repo.institution_exists(session, number=draft.number):
        raise AlreadyExists(
            "INSTITUTION_EXISTS", f"评价机构编号{draft.number}已登记", field_name="institution.number",
            resource_name=f"institutions/{draft.number}",
        )  # fmt: skip
    clash = repo.institution_with_code_digits(session, code_digits=draft.code_digits)
    if clash:
        raise AlreadyExists(
            "INSTITUTION_CODE_DIGITS_TAKEN",
            f"评价机构编号后四位“{draft.code_digits}”与已登记机构{clash}相同，内督员证卡编码将无法区分颁发机构（附件1第4-7位）",
            field_name="institution.number",
        )
    return repo.insert_institution(session, draft=draft, seal=seal, logo=logo, now=now)


def get_institution(session: Session, *, number: str) -> m.Institution:
    return found(repo.institution(session, number=number), f"institutions/{number}")


class Organisations:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    async def agency(self, code: str, render: Callable[[Session, m.Agency], T]) -> T:
        return await self.ctx.read(lambda s: render(s, found(repo.agency(s, code=code), f"agencies/{code}")))

    async def agencies(self, render: Callable[[Session, m.Agency], T]) -> list[T]:
        return await self.ctx.read(lambda s: [render(s, a) for a in repo.agencies(s)])

    async def update_agency(self, code: str, changes: dict, render: Callable[[Session, m.Agency], T]) -> T:
        now = self.ctx.now()

        def run(s: Session) -> T:
            a = found(repo.agency(s, code=code), f"agencies/{code}")
            repo.update_organisation(a, changes=changes, now=now)
            return render(s, a)

        return await self.ctx.write(run)

    async def create_institution(
        self, draft: InstitutionDraft, seal: CheckedImage | None, logo: CheckedImage | None,
        render: Callable[[Session, m.Institution], T],
    ) -> T:  # fmt: skip
        now = self.ctx.now()
        return await self.ctx.write(
            lambda s: render(s, create_institution(s, draft=draft, seal=seal, logo=logo, now=now))
        )

    async def institution(self, number: str, render: Callable[[Session, m.Institution], T]) -> T:
        return await self.ctx.read(lambda s: render(s, get_institution(s, number=number)))

    async def institutions(self, page: Page, render: Callable[[Session, m.Institution], T], **filters) -> Listing[T]:
        return await self.ctx.read(
            lambda s: listing(s, repo.list_institutions(s, page=page, **filters), page, key="id", render=render)
        )

    async def update_institution(self, number: str, changes: dict, render: Callable[[Session, m.Institution], T]) -> T:
        now = self.ctx.now()

        def run(s: Session) -> T:
            inst = get_institution(s, number=number)
            repo.update_organisation(inst, changes=changes, now=now)
            if "district_code" in changes:
                repo.move_supervisors_with_institution(s, inst)
            return render(s, inst)

        return await self.ctx.write(run)
