"""Signing in and out: the sandbox's test users, the organisation's OpenID Connect provider, choosing
a role, and the care setting (docs/web.md)."""

from __future__ import annotations

import secrets
import time

from ..domain.caller import User
from ..security.errors import RoleSelectionFailed, SecurityError
from ..security.tokens import user_from_claims
from . import views
from .endpoint import PREFIX, Page, Visit, refused
from .session import OIDC_COOKIE, Session, compact_claims
from .ui import UiBase, care_setting


class SignInPages(UiBase):
    def home(self, visit: Visit) -> Page:
        session = self._session(visit)
        if session.user is None:
            signing_in = session.drafts.pop("sign-in", {})
            if session.claims:
                return self._choose_role_page(session, error=signing_in.get("error"))
            return self._sign_in_page(session, error=signing_in.get("error"))
        draft = session.drafts.pop("find", {})
        title = "Error: Find a patient" if draft.get("error") else "Find a patient"
        return Page("find.html", {"title": title, "care_setting": care_setting(session),
                                  "nhs_error": draft.get("error"), "typed": draft.get("typed", ""),
                                  "setting_error": draft.get("setting_error")})

    def _sign_in_page(self, session: Session, status: int = 200, error: str | None = None,
                      outcome: str = "OK") -> Page:
        notice, session.notice = session.notice, None
        users = [{**u, "role": views.role_name(u.get("role_name")),
                  "org_label": views.organisation(u["org"], u.get("org_name")),
                  "activity_text": views.activity_names(u["activities"])} for u in self.sandbox_users]
        return Page("sign_in.html", {
            "title": ("Error: " if error else "") + "Sign in", "users": users,
            "oidc": self.oidc is not None, "notice": notice, "error": error}, status=status, outcome=outcome)

    def sign_in_sandbox(self, visit: Visit) -> Page:
        session = self._session(visit)
        if not self.settings.sandbox:
            return refused(404, "NOT_FOUND", "There is no such page.", "not sandbox")
        chosen = next((u for u in self.sandbox_users if u["user_id"] == visit.form.get("user")), None)
        setting = visit.form.get("care_setting")
        if chosen is None or setting not in ("unscheduled", "scheduled"):
            session.drafts["sign-in"] = {"error": "Choose a test user and a care setting."}
            return Page(redirect=f"{PREFIX}/", outcome="INVALID_FORM")
        from ..security.dev_tokens import issue_dev_token
        from ..settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER

        token = issue_dev_token(self.settings.layout.signing_key, issuer=SANDBOX_ISSUER, audience=SANDBOX_AUDIENCE,
                                user_id=chosen["user_id"], role_profile_id=chosen["role_profile_id"],
                                org_code=chosen["org"], activities=list(chosen["activities"]),
                                role_code=chosen.get("role_code", "R8000"), name=chosen.get("name"),
                                org_name=chosen.get("org_name"), expires_in=300,
                                **({"role_name": chosen["role_name"]} if chosen.get("role_name") else {}))
        user = self.verifier.verify(token)  # the same verification and role derivation as the API
        return self._signed_in(visit, user, setting == "unscheduled")

    def _signed_in(self, visit: Visit, user: User, unscheduled: bool | None = None) -> Page:
        fresh = self._session(visit).renewed()  # a new session id and CSRF secret at every sign-in
        fresh.user = user
        if unscheduled is not None:
            fresh.unscheduled = unscheduled
        fresh.flash = f"Signed in as {user.name or user.user_id}."
        visit.session = fresh
        return Page(redirect=f"{PREFIX}/")

    def sign_out(self, visit: Visit) -> Page:
        session = self._session(visit)
        visit.audit_caller = visit.caller
        self.signed_out.record(session.id, session.created + self.codec.lifetime)  # everywhere, not only here
        visit.session = None
        return Page(redirect=f"{PREFIX}/signed-out")

    def signed_out_page(self, visit: Visit) -> Page:
        if self._session(visit).user is not None:
            return Page(redirect=f"{PREFIX}/")
        return Page("signed_out.html", {"title": "You have signed out"})

    def start_oidc(self, visit: Visit) -> Page:
        if self.oidc is None:
            return refused(404, "NOT_FOUND", "Sign-in with an identity provider is not configured.", "no oidc")
        started = self.oidc.start()
        sealed = self.codec.seal(OIDC_COOKIE, {"state": started.state, "nonce": started.nonce,
                                               "verifier": started.verifier, "exp": int(time.time()) + 600})
        return Page(redirect=started.url, oidc_cookie=sealed)

    def oidc_callback(self, visit: Visit) -> Page:
        session = self._session(visit)
        if self.oidc is None:
            return refused(404, "NOT_FOUND", "Sign-in with an identity provider is not configured.", "no oidc")
        pending = self.codec.open(OIDC_COOKIE, visit.cookies.get(OIDC_COOKIE))
        failed = self._sign_in_page(session, 401, "Sign-in did not complete. Try again.", "SIGN_IN_FAILED")
        failed.oidc_cookie = ""
        state, code = visit.query.get("state"), visit.query.get("code")
        if pending is None or int(pending.get("exp", 0)) < time.time():
            failed.reason = "no or expired sign-in state"
            return failed
        if not state or not secrets.compare_digest(str(pending.get("state")), state):
            failed.reason = "state mismatch"
            return failed
        if visit.query.get("error") or not code:
            failed.reason = "provider refused"
            return failed
        try:
            claims = compact_claims(self.oidc.finish(code, str(pending["nonce"]), str(pending["verifier"])))
        except SecurityError as exc:
            failed.reason = exc.reason
            return failed
        try:
            user = user_from_claims(claims, None)
        except RoleSelectionFailed:
            fresh = session.renewed()  # several roles and none selected: the person chooses one next
            fresh.claims = claims
            visit.session = fresh
            return Page("continue.html", {"title": "Signing in"}, oidc_cookie="")
        except SecurityError as exc:
            failed.reason = exc.reason
            return failed
        self._signed_in(visit, user)
        return Page("continue.html", {"title": "Signing in"}, oidc_cookie="")

    def _choose_role_page(self, session: Session, status: int = 200, error: str | None = None,
                          outcome: str = "OK") -> Page:
        claims = session.claims or {}
        orgs = {o.get("org_code"): o.get("org_name") for o in claims.get("nhsid_user_orgs", [])}
        roles = [{"id": r.get("person_roleid"), "name": views.role_name(r.get("role_name")),
                  "org": orgs.get(r.get("org_code")) or views.organisation(r.get("org_code")),
                  "org_code": r.get("org_code"),
                  "activities": views.activity_names(r.get("activity_codes") or [])}
                 for r in claims.get("nhsid_nrbac_roles", [])]
        return Page("choose_role.html", {"title": ("Error: " if error else "") + "Choose your role", "roles": roles,
                                         "error": error, "name": claims.get("name")}, status=status, outcome=outcome)

    def choose_role(self, visit: Visit) -> Page:
        session = self._session(visit)
        if not session.claims:
            return Page(redirect=f"{PREFIX}/")
        setting = visit.form.get("care_setting")
        try:
            if setting not in ("unscheduled", "scheduled"):
                raise RoleSelectionFailed("no care setting")
            user = user_from_claims(session.claims, visit.form.get("role") or "")
        except SecurityError:
            session.drafts["sign-in"] = {"error": "Choose a role and a care setting."}
            return Page(redirect=f"{PREFIX}/", outcome="INVALID_FORM")
        return self._signed_in(visit, user, setting == "unscheduled")

    def care_setting(self, visit: Visit) -> Page:
        session = self._session(visit)
        setting = visit.form.get("care_setting")
        if setting not in ("unscheduled", "scheduled"):
            session.drafts["find"] = {"setting_error": "Choose a care setting."}
            return Page(redirect=f"{PREFIX}/", outcome="INVALID_FORM")
        session.unscheduled = setting == "unscheduled"
        session.flash = f"Care setting changed to {care_setting(session)['label'].lower()}."
        return Page(redirect=f"{PREFIX}/")
