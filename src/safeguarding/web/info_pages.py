"""The pages the footer links to: accessibility statement, privacy and contact. The texts describe
this service as it is built; an organisation that runs it adds its own contact details and
statement (docs/web.md)."""

from __future__ import annotations

from .endpoint import Page, Visit
from .ui import UiBase

ACCESSIBILITY = [
    "This service is built with the NHS.UK frontend design system so that as many people as possible can use it: "
    "you can change colours, contrast and fonts in your browser, zoom in to 400% without the text spilling off the "
    "screen, and navigate with a keyboard, speech recognition software or a screen reader.",
    "Every page is checked by automated tests with the axe-core accessibility engine, at desktop and mobile widths, "
    "and has no serious or critical issue that the engine reports. Automated tests do not find every problem.",
    "If you find a problem that is not listed here, or you need information in a different format, tell the "
    "organisation that runs this service (see Contact us).",
]
PRIVACY = [
    "This service shares safeguarding information about children (FGM indicators and child protection plans) "
    "between health and social care professionals, as NHS England's FGM Information Sharing and Child Protection "
    "Information Sharing services do.",
    "What you see and what you change is recorded in an audit trail under your name, role and organisation, and "
    "some views of a child protection plan are reported to the responsible local authority.",
    "The service stores the information in its own database. It uses one cookie, which keeps you signed in and "
    "protects the forms you send; the cookie holds no information you can read and is removed when you sign out "
    "or close the browser.",
]
CONTACT = [
    "For help with this service, contact your organisation's IT service desk.",
    "To report a safeguarding concern about a child, contact the child's local authority children's social care "
    "team: for a child with a child protection plan, its phone numbers are shown on the child's page.",
]


class InfoPages(UiBase):
    def _info(self, title: str, paragraphs: list[str]) -> Page:
        sandbox = ["This is the sandbox: test patients and test users only, and nothing here is real."] \
            if self.settings.sandbox else []
        return Page("info.html", {"title": title, "paragraphs": [*sandbox, *paragraphs]})

    def accessibility(self, visit: Visit) -> Page:
        return self._info("Accessibility statement", ACCESSIBILITY)

    def privacy(self, visit: Visit) -> Page:
        return self._info("Privacy", PRIVACY)

    def contact(self, visit: Visit) -> Page:
        return self._info("Contact us", CONTACT)
