"""Registry business actions. Each checks who may do it, applies the rule, and writes the change,
its audit record and its event in one transaction."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from time import monotonic
from typing import Any, TypeVar

from sqlalchemy import String, bindparam, cast, func, insert, or_, select, update

from tradewindow.platform import caches
from tradewindow.platform.auth import Actor, Role, hash_password, hash_secret, new_secret, verify_password
from tradewindow.platform.db import UnitOfWork, business_today, utcnow
from tradewindow.platform.errors import (
    Conflict,
    Problem,
    Problems,
    Unauthenticated,
    ValidationFailed,
    not_found,
    require,
)
from tradewindow.platform.ids import new_id
from tradewindow.platform.settings import get_settings
from tradewindow.registry import model
from tradewindow.registry.model import (
    AgencyKind,
    EnterpriseInput,
    EnterpriseStatus,
    LicenceStatus,
    LoginState,
)
from tradewindow.registry.tables import (
    agencies,
    broker_authorisations,
    credentials,
    enterprises,
    licences,
    startup_filings,
    users,
)

ZONE_STAFF = (Role.ZONE, Role.ADMIN)
SEES_ALL_ENTERPRISES = (Role.CUSTOMS, Role.QUARANTINE, Role.LICENSING, Role.ZONE, Role.ADMIN,
                        Role.BANK)

# A credential found good, per process, for at most CREDENTIAL_SECONDS: every request names its
# credential, and looking it up was a query on the event loop per request (a tenth of a lodging's
# server time). Revocation therefore takes effect:
# - at once in the server process whose service made it (log-out, key revocation or rotation,
#   deactivation, password reset, withdrawal drop this process's cache when they finish);
# - within CREDENTIAL_SECONDS in the other server processes.
# Kind, expiry and demo mode are checked on every use; a credential not found (or revoked, or
# its user inactive) is not cached, so one issued by another process works here at once.
CREDENTIAL_SECONDS = 1.0
_CREDENTIALS_KEPT = 10_000
# (engine, secret hash) -> (looked up at, credential kind, expires at, is demo user, actor)
_good_credentials: dict[tuple[int, str], tuple[float, str, datetime | None, bool, Actor]] = {}
caches.register(_good_credentials.clear)

_Action = TypeVar("_Action", bound=Callable[..., Any])


def _changes_credentials(action: _Action) -> _Action:
    """A service that revokes credentials or (de)activates users: once it has finished (its
    transaction committed or rolled back), this process looks every credential up afresh."""

    @functools.wraps(action)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        finally:
            _good_credentials.clear()

    return wrapper  # type: ignore[return-value]


# --- enterprises ---------------------------------------------------------------------------------


def register_enterprise(uow: UnitOfWork, actor: Actor, data: EnterpriseInput) -> dict:
    """The zone authority registers an enterprise (USCC, names, area, what it does)."""
    require(actor.is_(*ZONE_STAFF), "role_not_allowed", "Only the zone authority registers enterprises.")
    with uow.transaction():
        return _insert_enterprise(uow, actor, data)


def _insert_enterprise(uow: UnitOfWork, actor: Actor, data: EnterpriseInput) -> dict:
    model.validate_enterprise(data).raise_if_any()
    code = model.normalise_uscc(data.uscc)
    if uow.conn.execute(select(enterprises.c.id).where(enterprises.c.uscc == code)).first():
        raise Conflict([Problem("uscc", "duplicate",
                                f"An enterprise with credit code {code} is already registered.")])
    row = {
        "id": new_id(), "uscc": code, "name_zh": data.name_zh.strip(),
        "name_en": data.name_en.strip(), "address": data.address.strip(), "sector": data.sector,
        "business_scope": data.business_scope.strip(), "kinds": sorted(set(data.kinds)),
        "credit_tier": data.credit_tier, "status": EnterpriseStatus.ACTIVE.value,
        "registered_at": utcnow(), "withdrawn_at": None, "version": 1,
    }
    uow.conn.execute(insert(enterprises).values(row))
    uow.audit(actor, "registry.enterprise_registered", "enterprise", row["id"], None, _public(row))
    uow.emit("registry.enterprise_registered", "enterprise", row["id"],
             {"uscc": code, "name_en": row["name_en"]}, owner_enterprise_id=row["id"])
    return _public(row)


EDITABLE_FIELDS = ("name_zh", "name_en", "address", "sector", "business_scope", "kinds", "credit_tier")


def update_enterprise(uow: UnitOfWork, actor: Actor, enterprise_id: str, changes: dict[str, Any],
                      expected_version: int | None = None) -> dict:
    """Change an enterprise's particulars (not its credit code). With `expected_version`, a
    change based on a stale read is refused instead of overwriting someone else's edit."""
    require(actor.is_(*ZONE_STAFF), "role_not_allowed", "Only the zone authority edits enterprises.")
    problems = Problems()
    for field, value in changes.items():
        if field not in EDITABLE_FIELDS:
            problems.add(field, "not_editable", "This field cannot be changed here.")
        elif value is None:
            problems.add(field, "wrong_type", "Give a value; null does not clear a field.")
    problems.raise_if_any()
    with uow.transaction() as conn:
        before = _enterprise_row(uow, enterprise_id, for_update=True)
        if before["status"] == EnterpriseStatus.WITHDRAWN:
            raise Conflict("A withdrawn enterprise cannot be changed.", "enterprise_withdrawn")
        if expected_version is not None and expected_version != before["version"]:
            raise Conflict("Someone else changed this enterprise meanwhile; reload and retry.",
                           "stale_version", "version")
        merged = {**before, **changes}
        model.validate_enterprise(_input_from_row(merged)).raise_if_any()
        merged["kinds"] = sorted(set(merged["kinds"]))
        merged["version"] = before["version"] + 1
        conn.execute(update(enterprises).where(enterprises.c.id == enterprise_id).values(
            **{k: merged[k] for k in EDITABLE_FIELDS}, version=merged["version"]))
        uow.audit(actor, "registry.enterprise_updated", "enterprise", enterprise_id,
                  _public(before), _public(merged))
        uow.emit("registry.enterprise_updated", "enterprise", enterprise_id,
                 {"changed": sorted(changes)}, owner_enterprise_id=enterprise_id)
        return _public(merged)


def get_enterprise(uow: UnitOfWork, actor: Actor, id_or_uscc: str) -> dict:
    with uow.read():
        if id_or_uscc == actor.enterprise_id:
            # One's own enterprise (as each lodgement asks): by its id, and visible to its users.
            return _public(_enterprise_row(uow, id_or_uscc))
        row = _find_enterprise(uow, id_or_uscc)
        if row is None or not _may_see_enterprise(uow, actor, row["id"]):
            raise not_found("enterprise", id_or_uscc)
        return _public(row)


def list_enterprises(uow: UnitOfWork, actor: Actor, q: str | None = None, sector: str | None = None,
                     status: str | None = None, kind: str | None = None, limit: int = 50,
                     offset: int = 0) -> dict:
    with uow.read() as conn:
        query = select(enterprises)
        if not actor.is_(*SEES_ALL_ENTERPRISES):
            query = query.where(enterprises.c.id.in_(_related_enterprise_ids(uow, actor)))
        if q:
            like = f"%{q.strip()}%"
            query = query.where(or_(enterprises.c.name_en.ilike(like), enterprises.c.name_zh.like(like),
                                    enterprises.c.uscc.like(f"{q.strip().upper()}%")))
        if sector:
            query = query.where(enterprises.c.sector == sector)
        if status:
            query = query.where(enterprises.c.status == status)
        if kind:
            # kinds is a short JSON list; its text holds each kind in quotes.
            query = query.where(cast(enterprises.c.kinds, String).like(f'%"{kind}"%'))
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = conn.execute(query.order_by(enterprises.c.name_en).limit(limit).offset(offset)).mappings()
        items = [_public(r) for r in rows]
        return {"items": items, "total": total, "limit": limit, "offset": offset}


# Other contexts register what keeps an enterprise from leaving (bonded stock, unpaid duties,
# open declarations); each check returns the reasons, empty when there are none.
WithdrawalCheck = Callable[[UnitOfWork, str], list[Problem]]
_withdrawal_checks: dict[str, WithdrawalCheck] = {}


def register_withdrawal_check(name: str, check: WithdrawalCheck) -> None:
    _withdrawal_checks[name] = check


def unregister_withdrawal_check(name: str) -> None:
    _withdrawal_checks.pop(name, None)


def open_obligations(uow: UnitOfWork, enterprise_id: str) -> list[Problem]:
    with uow.read():
        return [p for check in _withdrawal_checks.values() for p in check(uow, enterprise_id)]


@_changes_credentials
def withdraw_enterprise(uow: UnitOfWork, actor: Actor, enterprise_id: str, reason: str) -> dict:
    """Electronic deregistration: refused, with every reason, while obligations are open. On
    withdrawal the enterprise's users are deactivated, their credentials and authorisations
    revoked."""
    require(actor.is_(*ZONE_STAFF), "role_not_allowed", "Only the zone authority withdraws enterprises.")
    if not reason.strip():
        raise ValidationFailed("Give the reason for the withdrawal.", "required", "reason")
    with uow.transaction() as conn:
        before = _enterprise_row(uow, enterprise_id, for_update=True)
        if before["status"] == EnterpriseStatus.WITHDRAWN:
            raise Conflict("The enterprise is already withdrawn.", "already_withdrawn")
        if obligations := open_obligations(uow, enterprise_id):
            raise Conflict(obligations)
        now = utcnow()
        conn.execute(update(enterprises).where(enterprises.c.id == enterprise_id).values(
            status=EnterpriseStatus.WITHDRAWN.value, withdrawn_at=now, version=before["version"] + 1))
        user_ids = select(users.c.id).where(users.c.enterprise_id == enterprise_id)
        conn.execute(update(users).where(users.c.enterprise_id == enterprise_id).values(active=False))
        conn.execute(update(credentials).where(credentials.c.user_id.in_(user_ids),
                                               credentials.c.revoked_at.is_(None)).values(revoked_at=now))
        conn.execute(update(broker_authorisations).where(
            or_(broker_authorisations.c.trader_id == enterprise_id,
                broker_authorisations.c.broker_id == enterprise_id),
            broker_authorisations.c.revoked_at.is_(None)).values(revoked_at=now))
        after = {**before, "status": EnterpriseStatus.WITHDRAWN.value, "withdrawn_at": now,
                 "version": before["version"] + 1}
        uow.audit(actor, "registry.enterprise_withdrawn", "enterprise", enterprise_id,
                  _public(before), {**_public(after), "reason": reason})
        uow.emit("registry.enterprise_withdrawn", "enterprise", enterprise_id, {"reason": reason},
                 owner_enterprise_id=enterprise_id)
        return _public(after)


def start_up_enterprise(uow: UnitOfWork, actor: Actor, client_reference: str, data: EnterpriseInput,
                        licence_types: list[str], first_user: dict | None = None) -> dict:
    """Enterprise start-up as one filing: registration, the licences applied for, and the first
    user. A repeat with the same client reference returns the first result."""
    require(actor.is_(*ZONE_STAFF), "role_not_allowed", "Start-up filings are lodged with the zone authority.")
    with uow.transaction() as conn:
        done = conn.execute(select(startup_filings).where(
            startup_filings.c.client_reference == client_reference)).mappings().first()
        if done is not None:
            return _startup_result(uow, done)
        problems = model.validate_enterprise(data, "enterprise")
        if not client_reference.strip():
            problems.add("client_reference", "required", "Give the filing a client reference.")
        for i, licence_type in enumerate(licence_types):
            if licence_type not in model.LICENCE_TYPES:
                problems.add(f"licences[{i}]", "unknown_licence_type",
                             f"Licence type is one of: {', '.join(model.LICENCE_TYPES)}.")
        if first_user is not None:
            if not USERNAME.fullmatch(first_user.get("username") or ""):
                problems.add("first_user.username", "invalid_username", USERNAME_RULE)
            if first_user.get("role") not in data.kinds:
                problems.add("first_user.role", "role_not_for_enterprise",
                             "The first user's role is one of what the enterprise does "
                             f"({', '.join(data.kinds) or 'nothing yet'}).")
            problems.extend(model.validate_password(first_user.get("password", ""),
                                                    get_settings().demo_mode, "first_user.password").items)
        problems.raise_if_any()
        enterprise = _insert_enterprise(uow, actor, data)
        for licence_type in licence_types:
            _insert_licence(uow, actor, enterprise["id"], licence_type, number=f"APP-{new_id()[-10:]}",
                            issuer="pending", status=LicenceStatus.APPLIED, valid_from=business_today(),
                            valid_to=None, scope=None)
        if first_user is not None:
            _insert_user(uow, actor, first_user["username"], first_user["password"],
                         Role(first_user["role"]), first_user.get("display_name") or first_user["username"],
                         enterprise["id"], None, is_demo=False)
        filing = {"id": new_id(), "client_reference": client_reference, "enterprise_id": enterprise["id"],
                  "filed_by": actor.user_id or "system", "filed_at": utcnow(),
                  "completed_at": None if licence_types else utcnow()}
        conn.execute(insert(startup_filings).values(filing))
        uow.audit(actor, "registry.startup_filed", "startup_filing", filing["id"], None,
                  {"enterprise_id": enterprise["id"], "licences": licence_types})
        return _startup_result(uow, filing)


def _startup_result(uow: UnitOfWork, filing: Any) -> dict:
    enterprise = _public(_enterprise_row(uow, filing["enterprise_id"]))
    held = [_licence_public(r) for r in uow.conn.execute(
        select(licences).where(licences.c.enterprise_id == filing["enterprise_id"])).mappings()]
    return {"id": filing["id"], "client_reference": filing["client_reference"],
            "enterprise": enterprise, "licences": held, "filed_at": filing["filed_at"],
            "completed_at": filing["completed_at"]}


# --- agencies ------------------------------------------------------------------------------------


def create_agency(uow: UnitOfWork, actor: Actor, code: str, kind: str, name_en: str, name_zh: str,
                  parent_code: str | None = None, location: str | None = None) -> dict:
    require(actor.is_(Role.ADMIN), "role_not_allowed", "Only an administrator creates agencies.")
    problems = Problems()
    if kind not in {k.value for k in AgencyKind}:
        problems.add("kind", "invalid_choice", f"Kind is one of: {', '.join(k.value for k in AgencyKind)}.")
    if not code.strip():
        problems.add("code", "required", "The agency code is required.")
    if not name_en.strip():
        problems.add("name_en", "required", "The agency's English name is required.")
    problems.raise_if_any()
    with uow.transaction() as conn:
        if conn.execute(select(agencies.c.id).where(agencies.c.code == code)).first():
            raise Conflict([Problem("code", "duplicate", f"Agency {code} exists already.")])
        parent_id = None
        if parent_code:
            parent_id = conn.execute(select(agencies.c.id).where(agencies.c.code == parent_code)).scalar()
            if parent_id is None:
                raise ValidationFailed(f"No agency {parent_code}.", "unknown_agency", "parent_code")
        row = {"id": new_id(), "code": code, "kind": kind, "name_en": name_en, "name_zh": name_zh,
               "parent_id": parent_id, "location": location}
        conn.execute(insert(agencies).values(row))
        uow.audit(actor, "registry.agency_created", "agency", row["id"], None, row)
        return row


def list_agencies(uow: UnitOfWork, kind: str | None = None) -> list[dict]:
    with uow.read() as conn:
        query = select(agencies).order_by(agencies.c.code)
        if kind:
            query = query.where(agencies.c.kind == kind)
        return [dict(r) for r in conn.execute(query).mappings()]


def agency_by_code(uow: UnitOfWork, code: str) -> dict | None:
    with uow.read() as conn:
        row = conn.execute(select(agencies).where(agencies.c.code == code)).mappings().first()
        return dict(row) if row else None


# --- users and credentials -----------------------------------------------------------------------


USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
USERNAME_RULE = "A username has 1 to 64 letters, digits, '.', '_' or '-'."


def create_user(uow: UnitOfWork, actor: Actor, username: str, password: str, role: str,
                display_name: str = "", enterprise_uscc: str | None = None,
                agency_code: str | None = None, is_demo: bool = False) -> dict:
    require(actor.is_(Role.ADMIN), "role_not_allowed", "Only an administrator creates users.")
    problems = Problems()
    if not USERNAME.fullmatch(username or ""):
        problems.add("username", "invalid_username", USERNAME_RULE)
    if role not in {r.value for r in Role}:
        problems.add("role", "invalid_choice", f"Role is one of: {', '.join(r.value for r in Role)}.")
    problems.extend(model.validate_password(password, get_settings().demo_mode or is_demo).items)
    with uow.transaction() as conn:
        # Every problem at once: the lookups add theirs to the format checks' before refusing.
        enterprise_id = agency_id = None
        kinds = agency_kind = None
        if enterprise_uscc:
            row = _find_enterprise(uow, enterprise_uscc)
            if row is None:
                problems.add("enterprise_uscc", "unknown_enterprise", "No enterprise with this credit code.")
            else:
                enterprise_id, kinds = row["id"], tuple(row["kinds"])
        if agency_code:
            agency = conn.execute(select(agencies).where(agencies.c.code == agency_code)).mappings().first()
            if agency is None:
                problems.add("agency_code", "unknown_agency", "No agency with this code.")
            else:
                agency_id, agency_kind = agency["id"], agency["kind"]
        found = (enterprise_id is not None or not enterprise_uscc) and (agency_id is not None or not agency_code)
        if role in {r.value for r in Role} and found:   # placement is moot for what does not exist
            problems.extend(model.validate_user_placement(Role(role), kinds, agency_kind).items)
        problems.raise_if_any()
        return _insert_user(uow, actor, username, password, Role(role), display_name or username,
                            enterprise_id, agency_id, is_demo)


def _insert_user(uow: UnitOfWork, actor: Actor, username: str, password: str, role: Role,
                 display_name: str, enterprise_id: str | None, agency_id: str | None,
                 is_demo: bool) -> dict:
    if uow.conn.execute(select(users.c.id).where(users.c.username == username)).first():
        raise Conflict([Problem("username", "duplicate", f"The username {username!r} is taken.")])
    row = {"id": new_id(), "username": username, "display_name": display_name, "role": role.value,
           "enterprise_id": enterprise_id, "agency_id": agency_id,
           "password_hash": hash_password(password), "is_demo": is_demo, "active": True,
           "failed_logins": 0, "locked_until": None, "created_at": utcnow()}
    uow.conn.execute(insert(users).values(row))
    uow.audit(actor, "registry.user_created", "user", row["id"], None, _user_public(row))
    return _user_public(row)


def list_users(uow: UnitOfWork, actor: Actor) -> list[dict]:
    require(actor.is_(Role.ADMIN), "role_not_allowed", "Only an administrator lists users.")
    with uow.read() as conn:
        return [_user_public(r) for r in conn.execute(select(users).order_by(users.c.username)).mappings()]


@_changes_credentials
def reset_password(uow: UnitOfWork, actor: Actor, user_id: str, new_password: str) -> dict:
    """An administrator sets a new password: it also unlocks the account and ends every session
    and token of the user (not its API keys, which machines use)."""
    require(actor.is_(Role.ADMIN), "role_not_allowed", "Only an administrator resets passwords.")
    model.validate_password(new_password, get_settings().demo_mode).raise_if_any()
    with uow.transaction() as conn:
        user = _user_row(uow, user_id)
        conn.execute(update(users).where(users.c.id == user_id).values(
            password_hash=hash_password(new_password), failed_logins=0, locked_until=None,
            is_demo=False))
        conn.execute(update(credentials).where(
            credentials.c.user_id == user_id, credentials.c.kind.in_(["token", "session"]),
            credentials.c.revoked_at.is_(None)).values(revoked_at=utcnow()))
        uow.audit(actor, "registry.password_reset", "user", user_id, None, {"username": user["username"]})
        return _user_public({**user, "failed_logins": 0, "locked_until": None})


@_changes_credentials
def set_user_active(uow: UnitOfWork, actor: Actor, user_id: str, active: bool) -> dict:
    require(actor.is_(Role.ADMIN), "role_not_allowed", "Only an administrator (de)activates users.")
    with uow.transaction() as conn:
        user = _user_row(uow, user_id)
        conn.execute(update(users).where(users.c.id == user_id).values(active=active))
        if not active:
            conn.execute(update(credentials).where(credentials.c.user_id == user_id,
                                                   credentials.c.revoked_at.is_(None))
                         .values(revoked_at=utcnow()))
        uow.audit(actor, "registry.user_activated" if active else "registry.user_deactivated",
                  "user", user_id, {"active": user["active"]}, {"active": active})
        return _user_public({**user, "active": active})


def log_in(uow: UnitOfWork, username: str, password: str, kind: str = "token") -> tuple[Actor, str]:
    """Check a password and hand out a credential: a bearer token (API) or a session (web UI).
    Every attempt is audited; repeated failures lock the account for a while."""
    settings = get_settings()
    now = utcnow()
    failure: Unauthenticated | None = None
    with uow.transaction() as conn:
        user = conn.execute(select(users).where(users.c.username == username)).mappings().first()
        state = LoginState(user["failed_logins"], user["locked_until"]) if user else None
        if user is None:
            failure = Unauthenticated("Wrong username or password.", "invalid_credentials")
            uow.audit(None, "registry.login_failed", "user", username, None, {"reason": "unknown_user"})
        elif state.is_locked(now):
            failure = Unauthenticated("Too many failed attempts: the account is locked for a while; "
                                      "an administrator can unlock it.", "account_locked")
            uow.audit(None, "registry.login_failed", "user", user["id"], None, {"reason": "locked"})
        elif not verify_password(password, user["password_hash"]):
            after = state.after_failure(now, settings.max_failed_logins,
                                        timedelta(minutes=settings.lockout_minutes))
            conn.execute(update(users).where(users.c.id == user["id"]).values(
                failed_logins=after.failed_logins, locked_until=after.locked_until))
            failure = Unauthenticated("Wrong username or password.", "invalid_credentials")
            uow.audit(None, "registry.login_failed", "user", user["id"], None,
                      {"reason": "wrong_password", "locked": after.is_locked(now)})
        elif not user["active"] or not _enterprise_active(uow, user["enterprise_id"]):
            failure = Unauthenticated("This account is deactivated.", "account_inactive")
            uow.audit(None, "registry.login_failed", "user", user["id"], None, {"reason": "inactive"})
        elif user["is_demo"] and not settings.demo_mode:
            failure = Unauthenticated("Demo accounts work only in demo mode; ask an administrator "
                                      "for a real password.", "demo_account_disabled")
            uow.audit(None, "registry.login_failed", "user", user["id"], None, {"reason": "demo_account"})
        else:
            conn.execute(update(users).where(users.c.id == user["id"]).values(failed_logins=0,
                                                                              locked_until=None))
            actor = _actor(user)
            secret = _issue_credential(uow, user["id"], kind, kind,
                                       expires_at=now + timedelta(hours=settings.token_hours))
            uow.audit(actor, "registry.login", "user", user["id"], None, {"kind": kind})
            return actor, secret
    # The failure's audit record and failure count are committed; only then refuse.
    raise failure


@_changes_credentials
def log_out(uow: UnitOfWork, secret: str) -> None:
    with uow.transaction() as conn:
        conn.execute(update(credentials).where(credentials.c.secret_hash == hash_secret(secret),
                                               credentials.c.revoked_at.is_(None))
                     .values(revoked_at=utcnow()))


def unlock_user(uow: UnitOfWork, actor: Actor, user_id: str) -> dict:
    require(actor.is_(Role.ADMIN), "role_not_allowed", "Only an administrator unlocks accounts.")
    with uow.transaction() as conn:
        user = _user_row(uow, user_id)
        conn.execute(update(users).where(users.c.id == user_id).values(failed_logins=0, locked_until=None))
        uow.audit(actor, "registry.user_unlocked", "user", user_id, None, None)
        return _user_public({**user, "failed_logins": 0, "locked_until": None})


def _issue_credential(uow: UnitOfWork, user_id: str, kind: str, name: str,
                      expires_at: datetime | None) -> str:
    secret = new_secret({"token": "tw_tok", "session": "tw_ses", "key": "tw_key"}[kind])
    uow.conn.execute(insert(credentials).values(
        id=new_id(), user_id=user_id, kind=kind, name=name, prefix=secret[:12],
        secret_hash=hash_secret(secret), created_at=utcnow(), expires_at=expires_at))
    return secret


def actor_by_username(uow: UnitOfWork, username: str) -> Actor | None:
    """The actor of an active user, for the machine's operator acting through the CLI."""
    with uow.read() as conn:
        row = conn.execute(select(users).where(users.c.username == username,
                                               users.c.active.is_(True))).mappings().first()
        return _actor(row) if row else None


def actor_for_token(uow: UnitOfWork, token: str) -> Actor | None:
    """The Authenticator for bearer tokens and API keys."""
    return _actor_for_secret(uow, token, ("token", "key"))


def actor_for_session(uow: UnitOfWork, session_secret: str) -> Actor | None:
    return _actor_for_secret(uow, session_secret, ("session",))


def _actor_for_secret(uow: UnitOfWork, secret: str, kinds: tuple[str, ...]) -> Actor | None:
    key = (id(uow.engine), hash_secret(secret))
    hit = _good_credentials.get(key)
    if hit is None or monotonic() - hit[0] >= CREDENTIAL_SECONDS:
        looked_up = monotonic()
        with uow.read() as conn:
            row = conn.execute(_CREDENTIAL_QUERY, {"secret_hash": key[1]}).mappings().first()
        if row is None or row["revoked_at"] is not None or not row["active"]:
            return None
        hit = (looked_up, row["credential_kind"], row["expires_at"], row["is_demo"], _actor(row))
        if len(_good_credentials) >= _CREDENTIALS_KEPT:
            _good_credentials.clear()
        _good_credentials[key] = hit
    # Checked on every use, cached or not.
    _, kind, expires_at, is_demo, actor = hit
    if kind not in kinds or (expires_at is not None and expires_at <= utcnow()) or (
            is_demo and not get_settings().demo_mode):
        return None
    return actor


_CREDENTIAL_QUERY = (
    select(users, credentials.c.kind.label("credential_kind"), credentials.c.expires_at,
           credentials.c.revoked_at)
    .join(credentials, credentials.c.user_id == users.c.id)
    .where(credentials.c.secret_hash == bindparam("secret_hash")))


def create_api_key(uow: UnitOfWork, actor: Actor, name: str) -> dict:
    """A long-lived key for a machine. The secret is shown once, here; we keep only its hash."""
    if not name.strip():
        raise ValidationFailed("Name the key (what uses it).", "required", "name")
    require(actor.user_id is not None, "role_not_allowed", "Only a user owns API keys.")
    with uow.transaction() as conn:
        secret = _issue_credential(uow, actor.user_id, "key", name.strip()[:100], expires_at=None)
        row = conn.execute(select(credentials).where(credentials.c.secret_hash == hash_secret(secret))
                           ).mappings().one()
        uow.audit(actor, "registry.api_key_created", "credential", row["id"], None, {"name": name})
        return {**_key_public(row), "secret": secret}


def list_api_keys(uow: UnitOfWork, actor: Actor, user_id: str | None = None) -> list[dict]:
    owner = user_id or actor.user_id
    require(owner == actor.user_id or actor.is_(Role.ADMIN), "not_your_key",
            "You can list only your own keys.")
    with uow.read() as conn:
        rows = conn.execute(select(credentials).where(credentials.c.user_id == owner,
                                                      credentials.c.kind == "key")
                            .order_by(credentials.c.created_at)).mappings()
        return [_key_public(r) for r in rows]


@_changes_credentials
def revoke_api_key(uow: UnitOfWork, actor: Actor, key_id: str) -> dict:
    with uow.transaction() as conn:
        row = _own_key(uow, actor, key_id)
        if row["revoked_at"] is None:
            conn.execute(update(credentials).where(credentials.c.id == key_id).values(revoked_at=utcnow()))
            uow.audit(actor, "registry.api_key_revoked", "credential", key_id, None, {"name": row["name"]})
        return _key_public(conn.execute(select(credentials).where(credentials.c.id == key_id))
                           .mappings().one())


@_changes_credentials
def rotate_api_key(uow: UnitOfWork, actor: Actor, key_id: str) -> dict:
    """Revoke a key and issue its successor under the same name, in one step."""
    with uow.transaction() as conn:
        row = _own_key(uow, actor, key_id)
        if row["revoked_at"] is not None:
            raise Conflict("This key is revoked; create a new one.", "key_revoked")
        conn.execute(update(credentials).where(credentials.c.id == key_id).values(revoked_at=utcnow()))
        secret = _issue_credential(uow, row["user_id"], "key", row["name"], expires_at=None)
        new = conn.execute(select(credentials).where(credentials.c.secret_hash == hash_secret(secret))
                           ).mappings().one()
        uow.audit(actor, "registry.api_key_rotated", "credential", key_id, None,
                  {"name": row["name"], "successor": new["id"]})
        return {**_key_public(new), "secret": secret}


def _own_key(uow: UnitOfWork, actor: Actor, key_id: str) -> Any:
    row = uow.conn.execute(select(credentials).where(credentials.c.id == key_id,
                                                     credentials.c.kind == "key")).mappings().first()
    if row is None or (row["user_id"] != actor.user_id and not actor.is_(Role.ADMIN)):
        raise not_found("API key", key_id)
    return row


# --- broker authorisations -----------------------------------------------------------------------


def authorise_broker(uow: UnitOfWork, actor: Actor, broker_uscc: str, valid_from: date,
                     valid_to: date | None = None) -> dict:
    """A trader authorises a customs broker to lodge on its behalf, for a period."""
    require(actor.is_(Role.TRADER) and actor.enterprise_id is not None, "role_not_allowed",
            "Only a trader authorises a broker, for itself.")
    model.validity_problems(valid_from, valid_to).raise_if_any()
    with uow.transaction() as conn:
        broker = _find_enterprise(uow, broker_uscc)
        if broker is None or broker["status"] != EnterpriseStatus.ACTIVE:
            raise ValidationFailed("No active enterprise with this credit code.", "unknown_enterprise",
                                   "broker_uscc")
        if "broker" not in broker["kinds"]:
            raise ValidationFailed("This enterprise is not registered as a customs broker.",
                                   "not_a_broker", "broker_uscc")
        row = {"id": new_id(), "trader_id": actor.enterprise_id, "broker_id": broker["id"],
               "valid_from": valid_from, "valid_to": valid_to, "revoked_at": None,
               "created_at": utcnow()}
        conn.execute(insert(broker_authorisations).values(row))
        uow.audit(actor, "registry.broker_authorised", "authorisation", row["id"], None,
                  {"broker": broker["uscc"], "valid_from": str(valid_from), "valid_to": str(valid_to)})
        uow.emit("registry.broker_authorised", "authorisation", row["id"],
                 {"broker_id": broker["id"]}, owner_enterprise_id=actor.enterprise_id)
        return _authorisation_public(uow, row)


def revoke_broker_authorisation(uow: UnitOfWork, actor: Actor, authorisation_id: str) -> dict:
    with uow.transaction() as conn:
        row = conn.execute(select(broker_authorisations).where(
            broker_authorisations.c.id == authorisation_id)).mappings().first()
        if row is None or (row["trader_id"] != actor.enterprise_id and not actor.is_(*ZONE_STAFF)):
            raise not_found("authorisation", authorisation_id)
        if row["revoked_at"] is None:
            conn.execute(update(broker_authorisations).where(
                broker_authorisations.c.id == authorisation_id).values(revoked_at=utcnow()))
            uow.audit(actor, "registry.broker_authorisation_revoked", "authorisation",
                      authorisation_id, None, None)
            uow.emit("registry.broker_authorisation_revoked", "authorisation", authorisation_id, {},
                     owner_enterprise_id=row["trader_id"])
        row = conn.execute(select(broker_authorisations).where(
            broker_authorisations.c.id == authorisation_id)).mappings().one()
        return _authorisation_public(uow, row)


def list_authorisations(uow: UnitOfWork, actor: Actor) -> list[dict]:
    with uow.read() as conn:
        query = select(broker_authorisations).order_by(broker_authorisations.c.created_at)
        if not actor.is_(*SEES_ALL_ENTERPRISES):
            query = query.where(or_(broker_authorisations.c.trader_id == actor.enterprise_id,
                                    broker_authorisations.c.broker_id == actor.enterprise_id))
        return [_authorisation_public(uow, r) for r in conn.execute(query).mappings()]


def broker_may_act_for(uow: UnitOfWork, broker_id: str, trader_id: str, on: date) -> bool:
    """Whether the broker holds an unrevoked authorisation of the trader in force on the day."""
    with uow.read() as conn:
        rows = conn.execute(select(broker_authorisations).where(
            broker_authorisations.c.broker_id == broker_id,
            broker_authorisations.c.trader_id == trader_id,
            broker_authorisations.c.revoked_at.is_(None))).mappings()
        return any(model.in_force(r["valid_from"], r["valid_to"], on) for r in rows)


# --- licences ------------------------------------------------------------------------------------

LICENCE_OFFICERS = (Role.LICENSING, Role.ZONE, Role.ADMIN)


def record_licence(uow: UnitOfWork, actor: Actor, enterprise_uscc: str, licence_type: str, number: str,
                   issuer: str, valid_from: date, valid_to: date | None = None,
                   scope: dict | None = None) -> dict:
    """Record a licence that an enterprise holds (granted by the issuing authority)."""
    require(actor.is_(*LICENCE_OFFICERS), "role_not_allowed", "Only licensing officers record licences.")
    problems = model.validity_problems(valid_from, valid_to)
    if licence_type not in model.LICENCE_TYPES:
        problems.add("licence_type", "unknown_licence_type",
                     f"Licence type is one of: {', '.join(model.LICENCE_TYPES)}.")
    if not number.strip():
        problems.add("number", "required", "The licence number is required.")
    with uow.transaction():
        enterprise = _find_enterprise(uow, enterprise_uscc)
        if enterprise is None:
            problems.add("enterprise_uscc", "unknown_enterprise", "No enterprise with this credit code.")
        problems.raise_if_any()
        return _insert_licence(uow, actor, enterprise["id"], licence_type, number.strip(), issuer,
                               LicenceStatus.GRANTED, valid_from, valid_to, scope)


def _insert_licence(uow: UnitOfWork, actor: Actor, enterprise_id: str, licence_type: str, number: str,
                    issuer: str, status: LicenceStatus, valid_from: date, valid_to: date | None,
                    scope: dict | None) -> dict:
    if uow.conn.execute(select(licences.c.id).where(licences.c.licence_type == licence_type,
                                                    licences.c.number == number)).first():
        raise Conflict([Problem("number", "duplicate", f"Licence {number} is already recorded.")])
    row = {"id": new_id(), "enterprise_id": enterprise_id, "licence_type": licence_type,
           "number": number, "issuer": issuer, "status": status.value, "valid_from": valid_from,
           "valid_to": valid_to, "scope": scope, "decision_reason": None, "created_at": utcnow()}
    uow.conn.execute(insert(licences).values(row))
    uow.audit(actor, f"registry.licence_{status.value}", "licence", row["id"], None, _licence_public(row))
    uow.emit(f"registry.licence_{status.value}", "licence", row["id"],
             {"licence_type": licence_type, "number": number}, owner_enterprise_id=enterprise_id)
    return _licence_public(row)


def decide_licence(uow: UnitOfWork, actor: Actor, licence_id: str, grant: bool, reason: str = "",
                   number: str | None = None, valid_to: date | None = None) -> dict:
    """A licensing officer decides a licence applied for in a start-up filing."""
    require(actor.is_(*LICENCE_OFFICERS), "role_not_allowed", "Only licensing officers decide licences.")
    with uow.transaction() as conn:
        row = conn.execute(select(licences).where(licences.c.id == licence_id)).mappings().first()
        if row is None:
            raise not_found("licence", licence_id)
        if row["status"] != LicenceStatus.APPLIED:
            raise Conflict(f"The licence is already {row['status']}.", "already_decided")
        problems = model.validity_problems(row["valid_from"], valid_to) if grant else Problems()
        if not grant and not reason.strip():
            problems.add("reason", "required", "Give the reason for a refusal.")
        problems.raise_if_any()
        status = LicenceStatus.GRANTED if grant else LicenceStatus.REFUSED
        values = {"status": status.value, "decision_reason": reason or None,
                  "issuer": actor.username, "valid_to": valid_to}
        if number:
            values["number"] = number
        conn.execute(update(licences).where(licences.c.id == licence_id).values(**values))
        after = {**row, **values}
        uow.audit(actor, f"registry.licence_{status.value}", "licence", licence_id,
                  _licence_public(row), _licence_public(after))
        uow.emit(f"registry.licence_{status.value}", "licence", licence_id,
                 {"licence_type": row["licence_type"]}, owner_enterprise_id=row["enterprise_id"])
        _complete_startup_if_decided(uow, row["enterprise_id"])
        return _licence_public(after)


def _complete_startup_if_decided(uow: UnitOfWork, enterprise_id: str) -> None:
    pending = uow.conn.execute(select(func.count()).select_from(licences).where(
        licences.c.enterprise_id == enterprise_id, licences.c.status == LicenceStatus.APPLIED.value)
    ).scalar_one()
    if pending == 0:
        uow.conn.execute(update(startup_filings).where(
            startup_filings.c.enterprise_id == enterprise_id,
            startup_filings.c.completed_at.is_(None)).values(completed_at=utcnow()))


def list_licences(uow: UnitOfWork, actor: Actor, enterprise_id: str | None = None,
                  status: str | None = None) -> list[dict]:
    with uow.read() as conn:
        query = select(licences).order_by(licences.c.created_at)
        if not actor.is_(*SEES_ALL_ENTERPRISES):
            query = query.where(licences.c.enterprise_id == actor.enterprise_id)
        if enterprise_id:
            query = query.where(licences.c.enterprise_id == enterprise_id)
        if status:
            query = query.where(licences.c.status == status)
        return [_licence_public(r) for r in conn.execute(query).mappings()]


def valid_licence(uow: UnitOfWork, enterprise_id: str, licence_type: str, number: str,
                  on: date) -> dict | None:
    """The enterprise's granted licence of this type and number in force on the day, if any."""
    with uow.read() as conn:
        row = conn.execute(select(licences).where(
            licences.c.enterprise_id == enterprise_id, licences.c.licence_type == licence_type,
            licences.c.number == number, licences.c.status == LicenceStatus.GRANTED.value)
        ).mappings().first()
        if row is None or not model.in_force(row["valid_from"], row["valid_to"], on):
            return None
        return _licence_public(row)



# --- lookups for other contexts ------------------------------------------------------------------


def enterprise_by_uscc(uow: UnitOfWork, uscc: str) -> dict | None:
    with uow.read():
        row = _find_enterprise(uow, uscc)
        return _public(row) if row else None


def visible_enterprise_ids(uow: UnitOfWork, actor: Actor) -> list[str] | None:
    """Tenancy: the enterprises whose filings the actor may see; None means all (officers)."""
    if actor.is_(*SEES_ALL_ENTERPRISES):
        return None
    with uow.read():
        return _related_enterprise_ids(uow, actor)


def own_scope(uow: UnitOfWork, actor: Actor) -> list[str] | None:
    """Whose own records (notifications, consignments, ...) the actor sees: None for everyone's
    (officers, administrators); an enterprise its own and, for a broker, its principals'. Banks
    may look every enterprise up in the register, but their records stay their own."""
    if actor.is_officer or actor.is_(Role.ADMIN):
        return None
    if actor.enterprise_id is None:
        return []
    ids = visible_enterprise_ids(uow, actor)
    return [actor.enterprise_id] if ids is None else ids


def _related_enterprise_ids(uow: UnitOfWork, actor: Actor) -> list[str]:
    if actor.enterprise_id is None:
        return []
    ids = {actor.enterprise_id}
    if actor.is_(Role.BROKER):
        today = business_today()
        rows = uow.conn.execute(select(broker_authorisations).where(
            broker_authorisations.c.broker_id == actor.enterprise_id,
            broker_authorisations.c.revoked_at.is_(None))).mappings()
        ids |= {r["trader_id"] for r in rows if model.in_force(r["valid_from"], r["valid_to"], today)}
    return sorted(ids)


def _may_see_enterprise(uow: UnitOfWork, actor: Actor, enterprise_id: str) -> bool:
    if actor.is_(*SEES_ALL_ENTERPRISES):
        return True
    if enterprise_id in _related_enterprise_ids(uow, actor):
        return True
    # A trader sees the brokers it authorised.
    return uow.conn.execute(select(broker_authorisations.c.id).where(
        broker_authorisations.c.trader_id == actor.enterprise_id,
        broker_authorisations.c.broker_id == enterprise_id)).first() is not None


# Built once: every lodgement reads the trader's row.
_ENTERPRISE_BY_ID = select(enterprises).where(enterprises.c.id == bindparam("id"))


def _find_enterprise(uow: UnitOfWork, id_or_uscc: str) -> Any:
    code = model.normalise_uscc(id_or_uscc).upper()
    return uow.conn.execute(select(enterprises).where(
        or_(enterprises.c.id == id_or_uscc, enterprises.c.uscc == code))).mappings().first()


def _enterprise_row(uow: UnitOfWork, enterprise_id: str, for_update: bool = False) -> dict:
    row = uow.conn.execute(uow.locking(_ENTERPRISE_BY_ID, for_update), {"id": enterprise_id}).mappings().first()
    if row is None:
        raise not_found("enterprise", enterprise_id)
    return dict(row)


def _enterprise_active(uow: UnitOfWork, enterprise_id: str | None) -> bool:
    if enterprise_id is None:
        return True
    status = uow.conn.execute(select(enterprises.c.status).where(enterprises.c.id == enterprise_id)).scalar()
    return status == EnterpriseStatus.ACTIVE


def _user_row(uow: UnitOfWork, user_id: str) -> dict:
    row = uow.conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
    if row is None:
        raise not_found("user", user_id)
    return dict(row)


def _actor(row: Any) -> Actor:
    return Actor(user_id=row["id"], username=row["username"], role=Role(row["role"]),
                 enterprise_id=row["enterprise_id"], agency_id=row["agency_id"])


def _input_from_row(row: Any) -> EnterpriseInput:
    return EnterpriseInput(uscc=row["uscc"], name_zh=row["name_zh"], name_en=row["name_en"],
                           address=row["address"], sector=row["sector"],
                           business_scope=row["business_scope"], kinds=tuple(row["kinds"]),
                           credit_tier=row["credit_tier"])


def _public(row: Any) -> dict:
    return {k: row[k] for k in ("id", "uscc", "name_zh", "name_en", "address", "sector",
                                "business_scope", "kinds", "credit_tier", "status",
                                "registered_at", "withdrawn_at", "version")}


def _user_public(row: Any) -> dict:
    return {k: row[k] for k in ("id", "username", "display_name", "role", "enterprise_id",
                                "agency_id", "is_demo", "active", "failed_logins", "locked_until",
                                "created_at")}


def _key_public(row: Any) -> dict:
    return {k: row[k] for k in ("id", "name", "prefix", "created_at", "revoked_at", "last_used_at")}


def _licence_public(row: Any) -> dict:
    return {k: row[k] for k in ("id", "enterprise_id", "licence_type", "number", "issuer", "status",
                                "valid_from", "valid_to", "scope", "decision_reason", "created_at")}


def _authorisation_public(uow: UnitOfWork, row: Any) -> dict:
    names = dict(uow.conn.execute(select(enterprises.c.id, enterprises.c.uscc).where(
        enterprises.c.id.in_([row["trader_id"], row["broker_id"]]))).all())
    return {"id": row["id"], "trader_id": row["trader_id"], "trader_uscc": names.get(row["trader_id"]),
            "broker_id": row["broker_id"], "broker_uscc": names.get(row["broker_id"]),
            "valid_from": row["valid_from"], "valid_to": row["valid_to"],
            "revoked_at": row["revoked_at"],
            "active": row["revoked_at"] is None and model.in_force(row["valid_from"], row["valid_to"],
                                                                   business_today())}


