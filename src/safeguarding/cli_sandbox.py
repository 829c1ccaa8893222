"""``safeguarding sandbox describe|reset`` and ``safeguarding dev-token``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli_options import data_dir_option, database_option
from .settings import Layout, sandbox_settings


def _user_names() -> dict[str, dict[str, object]]:
    """The sandbox users by first name (``amy`` for Dr Amy Sandbox)."""
    from .sandbox.setup import USERS

    return {str(u["name"]).split()[1].lower(): u for u in USERS}


def _not_a_sandbox(data_dir: Path) -> click.ClickException:
    return click.ClickException(f"{data_dir} is not a sandbox data dir: run 'safeguarding serve --sandbox' first, "
                                "or give the sandbox's --data-dir")


@click.group()
def sandbox() -> None:
    """The sandbox data set."""


@sandbox.command("describe")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--host", default=None, help="Default: where the sandbox server last started (else 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Default: where the sandbox server last started (else 8443).")
def sandbox_describe(data_dir: Path, as_json: bool, host: str | None, port: int | None) -> None:
    """The sandbox's fixed facts: URLs, ASIDs, certificates, users and patients."""
    from .sandbox.setup import describe, recorded_address

    if not Layout(data_dir).audit_key.exists():
        raise _not_a_sandbox(data_dir)
    recorded_host, recorded_port = recorded_address(data_dir) or ("127.0.0.1", 8443)
    facts = describe(sandbox_settings(data_dir, host=host or recorded_host, port=port or recorded_port))
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(f"base URL: {facts['base_url']}   service ASID: {facts['service_asid']}   CA: {facts['ca']}")
    for patient in facts["patients"]:
        click.echo(f"  {patient['nhs_number']}  {patient['purpose']}")


@sandbox.command("reset")
@data_dir_option
@database_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def sandbox_reset(data_dir: Path, database_url: str | None, yes: bool) -> None:
    """Back to the shipped data set (stop the sandbox server first). Keys, certificates and added systems stay."""
    from .cli_errors import remember_database
    from .sandbox.setup import reset

    if not Layout(data_dir).audit_key.exists():
        raise _not_a_sandbox(data_dir)
    if not yes:
        click.confirm(f"Delete every indicator, plan and audit record made in the sandbox in {data_dir}?", abort=True)
    if database_url:
        remember_database(database_url)
    settings = reset(data_dir, database_url)
    click.echo(json.dumps({"reset": True, "data_dir": str(settings.data_dir)}))


@click.command("dev-token")
@data_dir_option
@click.option("--user", "user", default=None,
              help="A sandbox user by first name: amy (query, create, remove), ben (query), cal (no FGM "
                   "activity), erin (CP-IS, emergency department), gus (CP-IS, GP); the options below override "
                   "its values.")
@click.option("--user-id", default=None, help="SDS user id (required without --user).")
@click.option("--role-profile-id", default=None, help="SDS role profile id (required without --user).")
@click.option("--org", default=None, help="ODS code of the organisation the role is in (required without --user).")
@click.option("--activities", default=None,
              help="Comma-separated RBAC activity codes, e.g. B0370,B0380 (required without --user).")
@click.option("--role-code", default=None, help="Job role code, e.g. R8000 (default R8000).")
@click.option("--name", default=None, help="The user's display name.")
@click.option("--expires-in", type=click.IntRange(1, 86400), default=3600, show_default=True, help="Seconds.")
@click.option("--client-id", default=None, help="Your application's client id (the token's azp claim), which "
              "`safeguarding assure --client-id` reports on.")
def dev_token(data_dir: Path, user: str | None, user_id: str | None, role_profile_id: str | None, org: str | None,
              activities: str | None, role_code: str | None, name: str | None, expires_in: int,
              client_id: str | None) -> None:
    """Print a CIS2-shaped JWT signed with the sandbox key."""
    from .security.dev_tokens import issue_dev_token
    from .settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER

    users = _user_names()
    if user is not None and user.lower() not in users:
        raise click.BadParameter(f"{user!r} is not a sandbox user: give one of {', '.join(sorted(users))}",
                                 param_hint="--user")
    preset: dict[str, object] = users[user.lower()] if user else {}
    user_id = user_id or _text(preset.get("user_id"))
    role_profile_id = role_profile_id or _text(preset.get("role_profile_id"))
    org = org or _text(preset.get("org"))
    listed = preset.get("activities")
    activities = activities or (",".join(str(a) for a in listed) if isinstance(listed, list) else None)
    role_code = role_code or _text(preset.get("role_code")) or "R8000"
    name = name or _text(preset.get("name"))
    missing = [option for option, value in (("--user-id", user_id), ("--role-profile-id", role_profile_id),
                                            ("--org", org), ("--activities", activities)) if not value]
    if missing:
        raise click.UsageError(f"give --user NAME (one of {', '.join(sorted(_user_names()))}) or {', '.join(missing)}")
    layout = Layout(data_dir)
    if not layout.signing_key.exists():
        raise click.ClickException(f"no sandbox signing key in {data_dir.resolve()}: give the sandbox's --data-dir, "
                                   "or run 'safeguarding serve --sandbox' first")
    assert user_id and role_profile_id and org and activities  # noqa: S101 - checked above, for the type checker
    click.echo(issue_dev_token(
        layout.signing_key, issuer=SANDBOX_ISSUER, audience=SANDBOX_AUDIENCE, user_id=user_id,
        role_profile_id=role_profile_id, org_code=org,
        activities=[a.strip() for a in activities.split(",") if a.strip()],
        role_code=f"S8000:G8000:{role_code}" if ":" not in role_code else role_code, name=name, expires_in=expires_in,
        client_id=client_id,
    ))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
