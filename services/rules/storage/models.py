"""Tables of the rules service: the decision log and the rule-set versions it refers to (D15)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.events import platform_tables


class Base(DeclarativeBase):
    pass


platform_tables(Base.metadata)


class DecisionRow(Base):
    """One logged decision: the request item it was made on and the response returned, byte for byte."""

    __tablename__ = "decision"

    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(sa.String(36), unique=True, nullable=False)
    kind: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    outcome: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    subject: Mapped[str] = mapped_column(sa.String(200), nullable=False, index=True)
    as_of_date: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    ruleset_id: Mapped[str] = mapped_column(sa.String(50), nullable=False)
    ruleset_version: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    evaluated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    input_digest: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    input_type: Mapped[str] = mapped_column(sa.String(120), nullable=False)  # full proto name of `input`
    # deterministic proto bytes of the request item; when `input_part_digest` is set, the bytes of that
    # shared part (InputPartRow) were cut out at `input_part_offset` and belong there (see full_input)
    input: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    input_part_digest: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    input_part_offset: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    result_type: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    result: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    actor: Mapped[str] = mapped_column(sa.String(200), nullable=False, default="")
    trace_id: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="")


class InputPartRow(Base):
    """A large part of decision inputs stored once by sha256 (a ProposeTeam pool: ~1.1 MB for 5,000
    supervisors, usually sent unchanged for many draws)."""

    __tablename__ = "input_part"

    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)


class RuleSetVersionRow(Base):
    """Every rule-set version this service ever served, with its canonical source (for replay)."""

    __tablename__ = "ruleset_version"

    version: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    ruleset_id: Mapped[str] = mapped_column(sa.String(50), nullable=False)
    effective_from: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    source: Mapped[str] = mapped_column(sa.Text, nullable=False)  # canonical JSON of the folder content
    overrides: Mapped[str] = mapped_column(sa.Text, nullable=False)  # JSON of the policy overrides applied
    first_loaded_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
