"""Named, overridable policy parameters of the registry (each cites its article or decision).

The annex fixes the code layout; the numbers below are limits of this service, not interpretations of the
regulation. Services build one `RegistryPolicy` from settings and pass it in. The serial ranges (D1) are
rule-set parameters (`badge.*`), read from the rules service (common.policy) when a badge is issued.
The term length (第十三条) is a rule-set parameter (`appointment.term_years`), read from the rules service
(common.policy) when an appointment starts or is renewed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegistryPolicy:
    #: 附件1 第2-3位 证卡颁发机构代码 11 代表北京市.
    region_code: str = "11"
    #: Largest accepted photo file (bytes); a 1-inch colour photo (附件2) is far smaller.
    photo_max_bytes: int = 2 * 1024 * 1024
    #: Smallest accepted photo in pixels (width, height); 2.5×3.5 cm at ~100 dpi.
    photo_min_size: tuple[int, int] = (100, 140)
    #: Largest accepted photo in pixels per side (guards against decompression bombs).
    photo_max_side: int = 6000
    #: Largest accepted seal / logo image (bytes).
    image_max_bytes: int = 2 * 1024 * 1024
    #: An appointment may start at most this many days in the future.
    max_future_start_days: int = 180


DEFAULT_POLICY = RegistryPolicy()
