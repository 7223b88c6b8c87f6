"""Registry rules, pure: what makes an enterprise, a user, a licence or an authorisation valid,
and when a login is locked out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from stdnum.cn import uscc

from tradewindow.platform.auth import ENTERPRISE_ROLES, OFFICER_ROLES, Role
from tradewindow.platform.errors import Problems


class CreditTier(StrEnum):
    """GACC enterprise credit management: AEO tiers get fewer inspections, discredited more."""
    ADVANCED_AEO = "advanced_aeo"
    GENERAL_AEO = "general_aeo"
    GENERAL = "general"
    DISCREDITED = "discredited"


class EnterpriseStatus(StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class AgencyKind(StrEnum):
    CUSTOMS = "customs"
    QUARANTINE = "quarantine"
    LICENSING = "licensing"
    ZONE = "zone"


class LicenceStatus(StrEnum):
    APPLIED = "applied"
    GRANTED = "granted"
    REFUSED = "refused"
    REVOKED = "revoked"


# The Chongqing Pilot Free Trade Zone's areas (kept here as the zone's own code list).
ZONE_SECTORS: dict[str, tuple[str, str]] = {
    "liangjiang": ("Liangjiang New Area", "两江新区"),
    "yuzhong": ("Yuzhong", "渝中"),
    "jiangbei": ("Jiangbei", "江北"),
    "shapingba": ("Shapingba", "沙坪坝"),
    "jiulongpo": ("Jiulongpo", "九龙坡"),
    "nanan": ("Nan'an", "南岸"),
    "beibei": ("Beibei", "北碚"),
    "yubei": ("Yubei", "渝北"),
    "xiyong": ("Xiyong", "西永"),
}

# What an enterprise does in the single window; a user's role must fit its enterprise's kinds.
ENTERPRISE_KINDS = frozenset(r.value for r in ENTERPRISE_ROLES)

LICENCE_TYPES: dict[str, str] = {
    "automatic_import_licence": "Automatic import licence",
    "import_licence": "Import licence (quota / restricted goods)",
    "export_licence": "Export licence",
    "food_import_registration": "Registration of overseas food producer / importer",
    "quarantine_permit": "Entry animal and plant quarantine permit",
    "ccc_certificate": "China Compulsory Certification",
    "cbec_enterprise": "Cross-border e-commerce enterprise registration",
    "bonded_warehouse": "Bonded warehouse operating licence",
    "customs_broker": "Customs declaration enterprise registration",
    "business_licence": "Business licence",
}

MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class EnterpriseInput:
    uscc: str
    name_zh: str
    name_en: str
    address: str
    sector: str
    business_scope: str
    kinds: tuple[str, ...]
    credit_tier: str = CreditTier.GENERAL.value


def normalise_uscc(value: str) -> str:
    return uscc.compact(value or "")


def validate_enterprise(data: EnterpriseInput, path: str = "") -> Problems:
    """Every problem of an enterprise's particulars at once."""
    problems = Problems()

    def at(field: str) -> str:
        return f"{path}.{field}" if path else field

    code = normalise_uscc(data.uscc)
    if not code:
        problems.add(at("uscc"), "required", "The unified social credit code is required.")
    elif len(code) != 18:
        problems.add(at("uscc"), "invalid_uscc",
                     "A unified social credit code has 18 characters.")
    elif not uscc.is_valid(code):
        problems.add(at("uscc"), "invalid_uscc",
                     "This is not a valid unified social credit code (the check character does not match).")
    if not data.name_zh.strip() and not data.name_en.strip():
        problems.add(at("name_zh"), "required", "Give the enterprise's registered name (Chinese or English).")
    for name, limit in (("name_zh", 200), ("name_en", 200), ("address", 500), ("business_scope", 2000)):
        if len(getattr(data, name)) > limit:
            problems.add(at(name), "too_long", f"At most {limit} characters.")
    if data.sector not in ZONE_SECTORS:
        problems.add(at("sector"), "unknown_sector",
                     f"Unknown zone area; one of: {', '.join(ZONE_SECTORS)}.")
    if data.credit_tier not in {t.value for t in CreditTier}:
        problems.add(at("credit_tier"), "invalid_choice",
                     f"Credit tier is one of: {', '.join(t.value for t in CreditTier)}.")
    if not data.kinds:
        problems.add(at("kinds"), "required", "Say what the enterprise does (trader, broker, ...).")
    for i, kind in enumerate(data.kinds):
        if kind not in ENTERPRISE_KINDS:
            problems.add(f"{at('kinds')}[{i}]", "invalid_choice",
                         f"Kind is one of: {', '.join(sorted(ENTERPRISE_KINDS))}.")
    return problems


def validate_password(password: str, demo_mode: bool, path: str = "password") -> Problems:
    problems = Problems()
    if demo_mode and password == "demo":
        return problems
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.add(path, "password_too_short",
                     f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    return problems


def validate_user_placement(role: Role, enterprise_kinds: tuple[str, ...] | None,
                            agency_kind: str | None) -> Problems:
    """Enterprise roles belong to an enterprise of that kind; officers to an agency of theirs."""
    problems = Problems()
    if role in ENTERPRISE_ROLES:
        if enterprise_kinds is None:
            problems.add("enterprise_uscc", "required", f"A {role} user belongs to an enterprise.")
        elif role.value not in enterprise_kinds:
            problems.add("role", "role_not_for_enterprise",
                         f"The enterprise is not registered as a {role}.")
    elif role in OFFICER_ROLES:
        if agency_kind is None:
            problems.add("agency_code", "required", f"A {role} officer belongs to an agency.")
        elif agency_kind != role.value:
            problems.add("role", "role_not_for_agency", f"The agency is not a {role} agency.")
    return problems


@dataclass(frozen=True)
class LoginState:
    failed_logins: int
    locked_until: datetime | None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def after_failure(self, now: datetime, max_failures: int, lockout: timedelta) -> LoginState:
        """Too many failures in a row lock the account for a while: slows password guessing
        without letting an attacker lock a user out for good."""
        failures = self.failed_logins + 1
        if failures >= max_failures:
            return LoginState(0, now + lockout)
        return LoginState(failures, self.locked_until)


def validity_problems(valid_from: date, valid_to: date | None, path: str = "") -> Problems:
    problems = Problems()
    if valid_to is not None and valid_to < valid_from:
        problems.add(f"{path}valid_to", "ends_before_start", "The end date is before the start date.")
    return problems


def in_force(valid_from: date, valid_to: date | None, on: date) -> bool:
    return valid_from <= on and (valid_to is None or on <= valid_to)
