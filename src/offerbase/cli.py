"""The `offerbase` command: serve the API, manage credentials.

Commands that write (`serve`, `credentials create|revoke|rotate`, `profiles import`,
`catalog import`, `datastreams create|delete`, `datasets create`, `users
create|delete|set-role`, `batch decide` without --dry-run) apply the database migrations first,
creating the database when it is missing. Read-only commands (`credentials list`, `sandboxes
list`, `events export`, `catalog export`, `datastreams list`, `datasets list`, `users list`,
`batch decide --dry-run`) never create nor change a database:
on a missing one or one not at the latest migration they exit 2 and say which command migrates
it. `events prune` deletes old events from a database that exists and is migrated, checked the
same way.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, TypeVar

import typer
from pydantic import ValidationError

from offerbase import logs, metrics
from offerbase.config import Settings
from offerbase.store import migrate, tenants, users
from offerbase.store.datasets import Dataset
from offerbase.store.datastreams import Datastream
from offerbase.store.db import Database, printable_url
from offerbase.store.migrate import upgrade
from offerbase.store.tenants import Sandbox

if TYPE_CHECKING:  # the batch package is loaded by the command that uses it
    from offerbase.batch.run import Summary as BatchSummary


def _group(help_text: str) -> typer.Typer:
    # Plain help (click's): rich help prints a type column (`<bool>`, `<str>`) beside every
    # flag, which says nothing a person needs.
    return typer.Typer(
        help=help_text, rich_markup_mode=None, no_args_is_help=True, add_completion=False
    )


app = _group(
    "Offerbase: offer decisioning, wire-compatible with Adobe Offer Decisioning.\n\n"
    "Start with `offerbase serve`; docs/tutorial.md walks from an empty data directory to "
    "decisions."
)
credentials_app = _group("Manage API credentials (a client id and a secret).")
app.add_typer(credentials_app, name="credentials")

T = TypeVar("T")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="DIR",
        help="The data directory: SQLite database, signing key, first credential "
        "(env OFFERBASE_DATA_DIR; default ./.offerbase).",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        help="The database, e.g. postgresql://user:password@host/db "
        "(env OFFERBASE_DATABASE_URL; default SQLite in the data directory).",
    ),
]
Org = Annotated[str, typer.Option(metavar="ORG", help="The organization id (x-gw-ims-org-id).")]
OrgFilter = Annotated[
    str | None, typer.Option(metavar="ORG", help="List this organization's only.")
]
SandboxName = Annotated[str, typer.Option(metavar="NAME", help="The sandbox name.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _refusable(run: Callable[[], Coroutine[Any, Any, T]], refused: str) -> T:
    """asyncio.run(run()); a refusal of the store (StoreError: a bad field, a duplicate, a
    limit) is printed as "<refused>: <detail>" and exits 1."""
    from offerbase.store.errors import StoreError

    try:
        return asyncio.run(run())
    except StoreError as exc:
        typer.echo(f"{refused}: {exc.detail}", err=True)
        raise typer.Exit(1) from exc


def _settings(data_dir: Path | None, database_url: str | None, *, writes: bool = True) -> Settings:
    """The command's settings; a command that writes creates the data directory."""
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        # One line per bad setting, named as the operator set it, instead of a traceback.
        # A URL or a key may hold a password: its value is not repeated.
        for error in exc.errors():
            field = "_".join(str(part) for part in error["loc"])
            shown = "" if "url" in field or "key" in field else f" (got {error['input']!r})"
            typer.echo(f"OFFERBASE_{field.upper()}: {error['msg']}{shown}.", err=True)
        raise typer.Exit(2) from None
    if writes:
        settings.ensure_data_dir()
    # Worker processes rebuild Settings from the environment; pass the flags on that way.
    os.environ["OFFERBASE_DATA_DIR"] = str(settings.data_dir)
    if database_url is not None:
        os.environ["OFFERBASE_DATABASE_URL"] = database_url
    return settings


MIGRATE_HINT = (
    "`offerbase serve` or `offerbase credentials create` creates and migrates it "
    "(read-only commands do not)"
)


@asynccontextmanager
async def _database(settings: Settings, *, writes: bool) -> AsyncIterator[Database]:
    """The command's database: migrated first when the command writes; checked to be migrated
    already when it only reads (exit code 2 otherwise)."""
    url = settings.resolved_database_url
    if not writes:
        problem = await migrate.not_ready(url, MIGRATE_HINT)
        if problem is not None:
            typer.echo(problem, err=True)
            raise typer.Exit(2)
    db = Database.for_settings(settings)
    try:
        if writes:
            await upgrade(db)
        yield db
    finally:
        await db.dispose()


async def _prepare(settings: Settings) -> tenants.NewCredential | None:
    """Migrate; on an empty database create org `default`, sandbox `prod` and a credential,
    an admin one (it can create no others, but manages them: api/admin.py)."""
    async with _database(settings, writes=True) as db, db.write() as conn:
        if await tenants.count_credentials(conn) > 0:
            return None
        return await tenants.create_credential(conn, "default", tenants.DEFAULT_SANDBOX, admin=True)


def _store_credentials_file(settings: Settings, credential: tenants.NewCredential) -> Path:
    path = settings.data_dir / "credentials.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(credential.__dict__, handle, indent=2)
    os.chmod(path, 0o600)
    return path


async def _in_sandbox(
    settings: Settings,
    org: str,
    name: str,
    work: Callable[[Database, Sandbox], Awaitable[T]],
    *,
    writes: bool,
) -> T:
    """Open the database (see `_database`), find the organization's sandbox and run `work` on
    it; a sandbox that does not exist ends the command with exit code 2."""
    async with _database(settings, writes=writes) as db:
        async with db.read() as conn:
            found = await tenants.get_sandbox(conn, org, name)
        if found is None:
            typer.echo(f"Organization '{org}' has no sandbox named '{name}'.", err=True)
            raise typer.Exit(2)
        return await work(db, found)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(metavar="HOST", help="The interface to listen on (0.0.0.0: all).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="PORT", min=1, max=65535, help="The TCP port (1-65535).")
    ] = 8080,
    workers: Annotated[
        int, typer.Option(metavar="N", min=1, help="How many worker processes to run.")
    ] = 1,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            metavar="LEVEL",
            help="Log debug, info, warning, error or critical and up "
            "(env OFFERBASE_LOG_LEVEL; default info).",
        ),
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            help="Write one log line per request (env OFFERBASE_ACCESS_LOG; default off)."
        ),
    ] = None,
    ssl_certfile: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Serve HTTPS with this certificate (PEM; with --ssl-keyfile)."
        ),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="The private key of --ssl-certfile (PEM)."),
    ] = None,
) -> None:
    """Run the HTTP API, after applying the database migrations.

    On an empty database it creates organization `default`, sandbox `prod` and an admin
    credential, whose secret it writes to <data dir>/credentials.json.

    \b
    Examples:
      offerbase serve
      offerbase serve --host 0.0.0.0 --workers 4 --database-url postgresql://db/offerbase
      offerbase serve --port 8443 --ssl-certfile dev.pem --ssl-keyfile dev-key.pem
    """
    import uvicorn

    if log_level is not None and log_level not in LOG_LEVELS:
        raise typer.BadParameter(
            f"must be one of {', '.join(LOG_LEVELS)}", param_hint="--log-level"
        )
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise typer.BadParameter(
            "--ssl-certfile and --ssl-keyfile go together", param_hint="--ssl-certfile"
        )
    for option, path in (("--ssl-certfile", ssl_certfile), ("--ssl-keyfile", ssl_keyfile)):
        if path is not None and not path.is_file():
            raise typer.BadParameter(f"no such file: {path}", param_hint=option)
    settings = _settings(data_dir, database_url)
    settings.resolved_secret_key  # noqa: B018 - create the signing key before workers race for it
    typer.echo(f"Data directory: {settings.data_dir.resolve()}")
    typer.echo(f"Database: {printable_url(settings.resolved_database_url)}")
    credential = asyncio.run(_prepare(settings))
    if credential is not None:
        path = _store_credentials_file(settings, credential)
        # The banner goes wherever the service manager sends stdout (a log stream, kept and
        # shipped): it names the file that holds the secret rather than printing it.
        typer.echo(
            f"Created organization 'default', sandbox 'prod' and credential "
            f"{credential.client_id}; its client_secret is in {path.resolve()} "
            "(mode 0600, readable by this user only)."
        )
    # Workers rebuild Settings from the environment (see _settings).
    level = log_level or settings.log_level
    os.environ["OFFERBASE_LOG_LEVEL"] = level
    if access_log is not None:
        os.environ["OFFERBASE_ACCESS_LOG"] = str(access_log).lower()
    if workers > 1 and not os.environ.get(metrics.MULTIPROC_ENV):
        metrics.prepare_multiprocess_dir(settings.data_dir / "prometheus")
    logs.configure(level)
    uvicorn.run(
        "offerbase.api.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=level,
        log_config=None,
        access_log=False,
        # httptools counting the request head (api/http_limits.py): 431/414 before a worker
        # buffers more than the limits.
        http="offerbase.api.http_limits:LimitedHttpToolsProtocol",
        # HTTPS for development (the Web SDK only speaks HTTPS); in production a TLS-terminating
        # proxy usually sits in front (docs/operations.md).
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )


@credentials_app.command("create")
def create_credentials(
    org: Org,
    sandbox: Annotated[
        str,
        typer.Option(
            metavar="NAME", help="The sandbox the credential may use (created when missing)."
        ),
    ] = "prod",
    all_sandboxes: Annotated[
        bool,
        typer.Option("--all-sandboxes", help="Let the credential use every sandbox of the org."),
    ] = False,
    admin: Annotated[
        bool,
        typer.Option(
            "--admin",
            help="Let it manage the org's credentials over HTTP (it then uses every sandbox).",
        ),
    ] = False,
    name: Annotated[
        str, typer.Option(metavar="LABEL", help="A label that `credentials list` shows.")
    ] = "",
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a credential, and its organization and sandbox when they are missing. The
    secret is printed once.

    \b
    Example:
      offerbase credentials create --org ACME@AdobeOrg --sandbox dev --json
    """
    settings = _settings(data_dir, database_url)

    async def run() -> tenants.NewCredential:
        async with _database(settings, writes=True) as db, db.write() as conn:
            return await tenants.create_credential(
                conn, org, sandbox, name, all_sandboxes=all_sandboxes, admin=admin
            )

    _print_secret(_refusable(run, "Not created"), as_json)


def _print_secret(credential: tenants.NewCredential, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(credential.__dict__))
        return
    typer.echo(f"client_id:     {credential.client_id}")
    typer.echo(f"client_secret: {credential.client_secret}")
    typer.echo(f"org:           {credential.org}")
    typer.echo(f"sandbox:       {credential.sandbox or '(every sandbox of the org)'}")
    typer.echo(f"admin:         {str(credential.admin).lower()}")


@credentials_app.command("list")
def list_credentials(
    org: OrgFilter = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print one JSON line per credential: client_id, org, name, sandbox (null: every
    sandbox), admin, created, revoked (null or when). Never a secret. Read-only: exits 2 when
    the database is missing or not migrated.

    \b
    Example:
      offerbase credentials list --org ACME@AdobeOrg
    """
    settings = _settings(data_dir, database_url, writes=False)

    async def run() -> list[tenants.Credential]:
        async with _database(settings, writes=False) as db, db.read() as conn:
            return await tenants.list_credentials(conn, org)

    for credential in asyncio.run(run()):
        typer.echo(json.dumps(credential.shown()))


# Arguments are described in their command's text: typer would print a type (`<str>`) beside
# them in an Arguments section.
ClientId = Annotated[str, typer.Argument(metavar="CLIENT_ID", hidden=True)]


@credentials_app.command("revoke")
def revoke_credentials(
    client_id: ClientId, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Revoke the credential CLIENT_ID: its secret stops working at once, its tokens within a
    second on every worker. Final. Prints the credential as JSON; exits 2 when there is no
    such one.

    \b
    Example:
      offerbase credentials revoke 3f9c0e1d2b4a5968778695a4b3c2d1e0
    """
    settings = _settings(data_dir, database_url)

    async def run() -> tenants.Credential | None:
        async with _database(settings, writes=True) as db, db.write() as conn:
            return await tenants.revoke_credential(conn, client_id)

    revoked = asyncio.run(run())
    if revoked is None:
        typer.echo(f"No credential '{client_id}'.", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(revoked.shown()))


@credentials_app.command("rotate")
def rotate_credentials(
    client_id: ClientId,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give the credential CLIENT_ID a new secret, printed once. The old secret stops working
    at once and the tokens issued with it within a second. Exits 2 when there is no such
    credential, 1 when it is revoked.

    \b
    Example:
      offerbase credentials rotate 3f9c0e1d2b4a5968778695a4b3c2d1e0 --json
    """
    settings = _settings(data_dir, database_url)

    async def run() -> tenants.NewCredential | None:
        async with _database(settings, writes=True) as db, db.write() as conn:
            return await tenants.rotate_credential(conn, client_id)

    try:
        rotated = asyncio.run(run())
    except tenants.CredentialRevoked as exc:
        typer.echo(f"Credential '{client_id}' is revoked; create a new one.", err=True)
        raise typer.Exit(1) from exc
    if rotated is None:
        typer.echo(f"No credential '{client_id}'.", err=True)
        raise typer.Exit(2)
    _print_secret(rotated, as_json)


def main() -> None:
    app()


# -- users of the admin UI ---------------------------------------------------------------------

users_app = _group("Manage the people who sign in to the admin UI at /admin.")
app.add_typer(users_app, name="users")
Email = Annotated[str, typer.Option(metavar="EMAIL", help="The user's email: the sign-in name.")]
RoleName = Annotated[
    str, typer.Option(metavar="ROLE", help="viewer, editor, approver or admin (store/users.py).")
]


def _print_user(user: users.User, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(user.shown()))
        return
    sandboxes = ", ".join(user.sandboxes) if user.sandboxes is not None else "(every sandbox)"
    typer.echo(f"{user.email}  org {user.org_id}  role {user.role.value}  sandboxes {sandboxes}")


@users_app.command("create")
def create_user(
    org: Org,
    email: Email,
    role: RoleName,
    sandbox: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="A sandbox the user may use (created when missing); repeat for more. "
            "Without any, every sandbox of the org.",
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from the first line of standard input (required: a "
            "password on the command line would stay in the shell history).",
        ),
    ] = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user of the admin UI, and the organization and sandboxes when they are missing.
    Exits 1 on a bad email, role or password (at least 12 characters) or an email in use.

    \b
    Example:
      printf '%s\\n' "$PASSWORD" | offerbase users create --org ACME@AdobeOrg \\
          --email ana@acme.example --role editor --sandbox prod --password-stdin --json
    """
    from datetime import UTC, datetime

    if not password_stdin:
        typer.echo("Give the password on standard input with --password-stdin.", err=True)
        raise typer.Exit(1)
    password = sys.stdin.readline().rstrip("\r\n")
    problem = users.password_problem(password)
    if problem is not None:
        typer.echo(f"Not created: {problem}", err=True)
        raise typer.Exit(1)
    settings = _settings(data_dir, database_url)

    async def run() -> users.User:
        password_hash = await asyncio.to_thread(users.hash_password, password)
        async with _database(settings, writes=True) as db, db.write() as conn:
            await tenants.ensure_org(conn, org)
            for name in sandbox or []:
                await tenants.ensure_sandbox(conn, org, name)
            return await users.create_user(
                conn, org, email, role, sandbox or None, password_hash, now=datetime.now(UTC)
            )

    created = _refusable(run, "Not created")
    _print_user(created, as_json)


@users_app.command("list")
def list_users(
    org: OrgFilter = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print every user (of one organization with --org), one per line; never a password hash.
    Read-only: exits 2 when the database is missing or not migrated.

    \b
    Example:
      offerbase users list --org ACME@AdobeOrg --json
    """
    settings = _settings(data_dir, database_url, writes=False)

    async def run() -> list[users.User]:
        async with _database(settings, writes=False) as db, db.read() as conn:
            return await users.list_users(conn, org)

    for user in asyncio.run(run()):
        _print_user(user, as_json)


@users_app.command("delete")
def delete_user(
    org: Org, email: Email, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Delete a user of the organization; its open sessions end at once. Exits 2 when the
    organization has no such user.

    \b
    Example:
      offerbase users delete --org ACME@AdobeOrg --email ana@acme.example
    """
    settings = _settings(data_dir, database_url)

    async def run() -> bool:
        async with _database(settings, writes=True) as db, db.write() as conn:
            return await users.delete_user(conn, org, email)

    if not asyncio.run(run()):
        typer.echo(f"Organization '{org}' has no user '{email}'.", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps({"deleted": users.normal_email(email)}))


@users_app.command("set-role")
def set_user_role(
    org: Org,
    email: Email,
    role: RoleName,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give a user of the organization another role, in force on its next request (open
    sessions included). Exits 1 on a bad role, 2 when the organization has no such user.

    \b
    Example:
      offerbase users set-role --org ACME@AdobeOrg --email ana@acme.example --role approver
    """
    settings = _settings(data_dir, database_url)

    async def run() -> users.User | None:
        async with _database(settings, writes=True) as db, db.write() as conn:
            return await users.set_role(conn, org, email, role)

    changed = _refusable(run, "Not changed")
    if changed is None:
        typer.echo(f"Organization '{org}' has no user '{email}'.", err=True)
        raise typer.Exit(2)
    _print_user(changed, as_json)


# -- profiles ----------------------------------------------------------------------------------

profiles_app = _group("Manage the stored profiles that decisions read.")
app.add_typer(profiles_app, name="profiles")


@profiles_app.command("import")
def import_profiles(
    file: Annotated[Path, typer.Argument(metavar="FILE", hidden=True)],
    org: Org,
    sandbox: SandboxName = "prod",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create or replace profiles from FILE, one JSON profile per line ('-' reads stdin);
    prints {"imported", "failed", "errors"}.

    Exits 0 when every line was imported, 1 when some failed (the others are imported), 2 when
    the file or the sandbox does not exist.

    \b
    Example:
      offerbase profiles import profiles.ndjson --org ACME@AdobeOrg --sandbox prod
    """
    from offerbase.store.profiles import import_lines

    settings = _settings(data_dir, database_url)
    if str(file) != "-" and not file.is_file():
        typer.echo(f"No such file: {file}", err=True)
        raise typer.Exit(2)

    async def run(db: Database, found: Sandbox) -> dict[str, object]:
        if str(file) == "-":
            summary = await import_lines(db, found, sys.stdin.buffer)
        else:
            with file.open("rb") as handle:
                summary = await import_lines(db, found, handle)
        return summary.as_dict()

    result = asyncio.run(_in_sandbox(settings, org, sandbox, run, writes=True))
    typer.echo(json.dumps(result))
    if result["failed"]:
        raise typer.Exit(1)


# -- sandboxes and decision events -------------------------------------------------------------

sandboxes_app = _group("The organizations' sandboxes and their container ids.")
app.add_typer(sandboxes_app, name="sandboxes")
events_app = _group(
    "The decision events that the Decisioning API and the Edge endpoints recorded, and the "
    "interaction events (display, click, dismiss feedback) that arrived on the Edge endpoints."
)
app.add_typer(events_app, name="events")


@sandboxes_app.command("list")
def list_sandboxes(
    org: OrgFilter = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print one JSON line per sandbox: org, name, sandboxId and containerId (the id the legacy
    /data/core/ode/{containerId}/decisions endpoint takes). Read-only: exits 2 when the
    database is missing or not migrated, or when --org names an organization that has no
    sandbox.

    \b
    Example:
      offerbase sandboxes list --org ACME@AdobeOrg
    """
    settings = _settings(data_dir, database_url, writes=False)

    async def run() -> list[tenants.Sandbox]:
        async with _database(settings, writes=False) as db, db.read() as conn:
            return await tenants.list_sandboxes(conn, org)

    found = asyncio.run(run())
    if org is not None and not found:
        typer.echo(f"Organization '{org}' has no sandbox (is the id right?).", err=True)
        raise typer.Exit(2)
    for sandbox in found:
        typer.echo(
            json.dumps(
                {
                    "org": sandbox.org_id,
                    "name": sandbox.name,
                    "sandboxId": sandbox.sandbox_id,
                    "containerId": sandbox.container_id,
                }
            )
        )


class EventType(StrEnum):
    decision = "decision"
    interaction = "interaction"


class ExportFormat(StrEnum):
    ndjson = "ndjson"
    parquet = "parquet"


@events_app.command("export")
def export_events(
    org: Org,
    sandbox: SandboxName = "prod",
    event_type: Annotated[
        EventType,
        typer.Option(
            "--type",
            help="decision: what each decision chose (the default); interaction: Edge "
            "feedback (display, interact, dismiss, custom), one line per proposition.",
        ),
    ] = EventType.decision,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="TIME", help="Export the events at or after this time only (ISO-8601, Z)."
        ),
    ] = None,
    export_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="ndjson: one JSON record per line (the default); parquet: typed columns, "
            "in row groups of 10,000 events (docs/operations.md lists the columns).",
        ),
    ] = ExportFormat.ndjson,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            metavar="FILE",
            help="Write to this file (replaced once the export is complete) instead of stdout.",
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write every decision event (or, with --type interaction, every interaction event) of a
    sandbox to stdout or --output, oldest first, as NDJSON or Parquet. Parquet is binary: it
    goes to --output, or to stdout when stdout is not a terminal (a pipe or a file). Read-only:
    exits 2 when the database is missing or not migrated, or the sandbox does not exist.

    \b
    Examples:
      offerbase events export --org ACME@AdobeOrg --since 2026-12-01T00:00:00.000Z > events.ndjson
      offerbase events export --org ACME@AdobeOrg --type interaction > feedback.ndjson
      offerbase events export --org ACME@AdobeOrg --format parquet --output events.parquet
    """
    from offerbase.store.events import DecisionEvents
    from offerbase.store.interactions import InteractionEvents

    parquet = export_format is ExportFormat.parquet
    if parquet and output is None and sys.stdout.isatty():
        typer.echo(
            "Parquet is binary: give --output FILE, or redirect stdout to a file or a pipe.",
            err=True,
        )
        raise typer.Exit(1)
    settings = _settings(data_dir, database_url, writes=False)

    async def run(db: Database, found: Sandbox) -> None:
        if event_type is EventType.interaction:
            events = InteractionEvents(db, found).export(since)
        else:
            events = DecisionEvents(db, found).export(since)
        if output is None:
            await _write_events(events, event_type, export_format, sys.stdout.buffer)
            return
        partial = output.with_name(output.name + ".partial")
        try:
            with partial.open("wb") as sink:
                await _write_events(events, event_type, export_format, sink)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(output)  # a failed export leaves the previous file, not half of one

    asyncio.run(_in_sandbox(settings, org, sandbox, run, writes=False))


async def _write_events(
    events: AsyncIterator[dict[str, object]],
    event_type: EventType,
    export_format: ExportFormat,
    sink: BinaryIO,
) -> None:
    if export_format is ExportFormat.parquet:
        from offerbase.store.parquet import write_parquet

        await write_parquet(events, event_type.value, sink)
        return
    async for event in events:
        sink.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
    sink.flush()


@events_app.command("prune")
def prune_events(
    older_than_days: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            min=1,
            max=36_500,
            help="Delete the events older than N days (default OFFERBASE_EVENT_RETENTION_DAYS, "
            "90).",
        ),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete the decision and interaction events of every sandbox that are older than the
    retention, in batches, as the server's pruning task does (rollups are kept), and print how
    many were deleted. With OFFERBASE_EVENT_RETENTION_DAYS=0 and no --older-than-days it
    deletes nothing. Export what you want to keep first (`offerbase events export`). Exits 2
    when the database is missing or not migrated (it never creates one).

    \b
    Examples:
      offerbase events prune
      offerbase events prune --older-than-days 30
    """
    from datetime import UTC, datetime

    from offerbase.store.retention import Pruned, cutoff
    from offerbase.store.retention import prune_events as prune

    settings = _settings(data_dir, database_url, writes=False)
    days = older_than_days if older_than_days is not None else settings.event_retention_days
    before = cutoff(datetime.now(UTC), days) if days else None

    async def run(older_than: str) -> Pruned:
        # writes=False: the database must exist and be migrated; pruning creates nothing.
        async with _database(settings, writes=False) as db:
            return await prune(db, older_than)

    pruned = Pruned() if before is None else asyncio.run(run(before))
    if as_json:
        counts = {"decisionEvents": pruned.decision_events}
        typer.echo(json.dumps({**counts, "interactionEvents": pruned.interaction_events}))
    elif before is None:
        typer.echo("Retention is off (OFFERBASE_EVENT_RETENTION_DAYS=0): nothing deleted.")
    else:
        typer.echo(
            f"Deleted {pruned.decision_events} decision events and "
            f"{pruned.interaction_events} interaction events older than {before}."
        )


# -- reports -----------------------------------------------------------------------------------


class ReportFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _report_table(report: Any, group_by: tuple[str, ...]) -> str:
    """The report as aligned text columns (unattributed keys and null ratios shown as -)."""
    from offerbase.api.reports import report_csv

    lines = list(csv.reader(io.StringIO(report_csv(report, group_by))))
    lines = [[cell or "-" for cell in line] for line in lines]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _report_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        day: date | None = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or len(value) != 10:  # fromisoformat also takes 20261124
        typer.echo(f"{option}: '{value}' is not a day (YYYY-MM-DD).", err=True)
        raise typer.Exit(1)
    return day


@app.command("report")
def report(
    org: Org,
    sandbox: SandboxName = "prod",
    group_by: Annotated[
        list[str] | None,
        typer.Option(
            "--group-by",
            metavar="KEYS",
            help="Group by these keys, a comma list or repeated: offer, activity, placement, "
            "day (default offer).",
        ),
    ] = None,
    first: Annotated[
        str | None,
        typer.Option(
            "--from", metavar="DAY", help="The first UTC day, YYYY-MM-DD (default 29 days ago)."
        ),
    ] = None,
    last: Annotated[
        str | None,
        typer.Option("--to", metavar="DAY", help="The last UTC day, YYYY-MM-DD (default today)."),
    ] = None,
    output: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            help="table: aligned columns; csv: as the API's text/csv; json: as its JSON.",
        ),
    ] = ReportFormat.table,
    unique_totals: Annotated[
        bool,
        typer.Option(
            "--unique-totals",
            help="Also count the totals' unique displays and clicks over the range (a scan).",
        ),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print an offer report of a sandbox: decisions, fallbacks, displays, clicks, CTR,
    conversions and cap hits, as GET /data/core/ods/reports answers it (docs/reports.md).
    Read-only: exits 2 when the database is missing or not migrated, or the sandbox does not
    exist; 1 on a bad option.

    \b
    Examples:
      offerbase report --org ACME@AdobeOrg --group-by offer,day --from 2026-11-01
      offerbase report --org ACME@AdobeOrg --group-by activity --format csv > report.csv
    """
    from offerbase.api.reports import report_csv
    from offerbase.store import reports

    settings = _settings(data_dir, database_url, writes=False)
    try:
        query = reports.build_query(
            group_by,
            _report_day(first, "--from"),
            _report_day(last, "--to"),
            datetime.now(UTC).date(),
            unique_totals=unique_totals,
        )
    except reports.BadReportQuery as exc:
        typer.echo(exc.detail, err=True)
        raise typer.Exit(1) from None

    async def run(db: Database, found: Sandbox) -> reports.Report:
        return await reports.report(db, found, query)

    try:
        result = asyncio.run(_in_sandbox(settings, org, sandbox, run, writes=False))
    except reports.ReportTooLarge as exc:
        typer.echo(f"{exc} Narrow the range or the grouping.", err=True)
        raise typer.Exit(1) from None
    if output is ReportFormat.json:
        typer.echo(json.dumps({"results": result.results, "totals": result.totals}))
    elif output is ReportFormat.csv:
        typer.echo(report_csv(result, query.group_by), nl=False)
    else:
        typer.echo(_report_table(result, query.group_by))


# -- catalog -----------------------------------------------------------------------------------

catalog_app = _group("A sandbox's whole Offer Library as one JSON document.")
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("export")
def export_catalog(
    org: Org,
    sandbox: SandboxName = "prod",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write the sandbox's current catalog to stdout (format offerbase-catalog/1). Read-only:
    exits 2 when the database is missing or not migrated, or the sandbox does not exist.

    \b
    Example:
      offerbase catalog export --org ACME@AdobeOrg --sandbox dev > catalog.json
    """
    from offerbase.store.catalog_io import export_catalog as export

    settings = _settings(data_dir, database_url, writes=False)

    async def run(db: Database, found: Sandbox) -> dict[str, object]:
        async with db.read() as conn:
            return await export(conn, found)

    document = asyncio.run(_in_sandbox(settings, org, sandbox, run, writes=False))
    typer.echo(json.dumps(document, indent=1))


@catalog_app.command("import")
def import_catalog(
    file: Annotated[Path, typer.Argument(metavar="FILE", hidden=True)],
    org: Org,
    sandbox: SandboxName = "prod",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create every entity of FILE, a document from `catalog export` ('-' reads stdin), in the
    sandbox, each with its id, all or nothing.

    Prints how many entities of each kind were created. Exits 1 when the document or one of
    its entities is refused (an id already in use, a failed validation, a guardrail), writing
    nothing, and 2 when the file or the sandbox does not exist.

    \b
    Example:
      offerbase catalog import catalog.json --org ACME@AdobeOrg --sandbox prod
    """
    from offerbase.store.catalog_io import CatalogImportError
    from offerbase.store.catalog_io import import_catalog as load
    from offerbase.store.library import Actor

    settings = _settings(data_dir, database_url)
    if str(file) != "-" and not file.is_file():
        typer.echo(f"No such file: {file}", err=True)
        raise typer.Exit(2)
    try:
        document = json.loads(sys.stdin.read() if str(file) == "-" else file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        typer.echo(f"Not JSON: {exc}", err=True)
        raise typer.Exit(1) from exc
    actor = Actor(user="offerbase catalog import", client_id="offerbase-cli")

    async def run(db: Database, found: Sandbox) -> dict[str, int]:
        async with db.write() as conn:
            return await load(conn, found, document, actor)

    try:
        counts = asyncio.run(_in_sandbox(settings, org, sandbox, run, writes=True))
    except CatalogImportError as exc:
        typer.echo(f"Nothing imported: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps({"imported": counts}))


# -- deployment --------------------------------------------------------------------------------

deployment_app = _group("This database's deployment id (it names its Redis keys).")
app.add_typer(deployment_app, name="deployment")


@deployment_app.command("id")
def show_deployment_id(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Print the database's deployment id. Read-only: exits 2 when the database is missing or
    not migrated.

    \b
    Example:
      offerbase deployment id --data-dir /var/lib/offerbase
    """
    from offerbase.store.deployment import deployment_id

    settings = _settings(data_dir, database_url, writes=False)

    async def run() -> str:
        async with _database(settings, writes=False) as db:
            return await deployment_id(db)

    typer.echo(asyncio.run(run()))


@deployment_app.command("new-id")
def new_deployment_id(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Give the database a new deployment id and print it: for a copy of another deployment's
    database (a restored backup) that is to run beside it on the same Redis, so that it counts
    caps on its own from zero. Run it before the copy serves; the original keeps its id and
    its counters.

    \b
    Example:
      offerbase deployment new-id --database-url postgresql://offerbase@staging-db/offerbase
    """
    from offerbase.store.deployment import new_deployment_id as replace_id

    settings = _settings(data_dir, database_url, writes=True)

    async def run() -> str:
        async with _database(settings, writes=True) as db:
            return await replace_id(db)

    typer.echo(asyncio.run(run()))


# -- datastreams -------------------------------------------------------------------------------

datastreams_app = _group(
    "Datastreams: what an Edge request (Web SDK, Mobile SDK, Server API) names with configId "
    "or dataStreamId."
)
app.add_typer(datastreams_app, name="datastreams")


def _print_datastream(found: Datastream, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(found.shown()))
        return
    origins = ", ".join(found.origins) or "(none: no browser may call)"
    typer.echo(
        f"{found.id}  org {found.sandbox.org_id}  sandbox {found.sandbox.name}  "
        f"name {found.name!r}  origins {origins}"
    )


def _item_counts(values: list[str]) -> dict[str, int]:
    """`PLACEMENT=N` pairs; exit 1 on a malformed one (the range is the store's to check)."""
    counts: dict[str, int] = {}
    for value in values:
        placement, _, number = value.rpartition("=")
        if not placement or not number.strip().lstrip("-").isdigit():
            typer.echo(f"--item-count {value!r}: write PLACEMENT_ID=N (N from 1 to 30).", err=True)
            raise typer.Exit(1)
        counts[placement] = int(number)
    return counts


@datastreams_app.command("create")
def create_datastream(
    org: Org,
    sandbox: Annotated[
        str, typer.Option(metavar="NAME", help="The datastream's sandbox (created when missing).")
    ] = "prod",
    name: Annotated[str, typer.Option(metavar="N", help="A name that lists show.")] = "",
    origin: Annotated[
        list[str] | None,
        typer.Option(
            metavar="URL",
            help="A web origin allowed to call with it (scheme://host[:port]); repeat for more. "
            "Without any, browsers are refused (server-side calls send no Origin).",
        ),
    ] = None,
    item_count: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PLACEMENT=N",
            help="The itemCount (1-30) of a decision scope for this placement that names none; "
            "repeat for more placements.",
        ),
    ] = None,
    datastream_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            metavar="ID",
            help="The id to give it (1-64 of A-Z a-z 0-9 . _ : -); default a new UUID.",
        ),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a datastream, and its organization and sandbox when they are missing; prints it
    (id, org, sandbox, name, origins, itemCounts, created). Works while the server runs: every
    worker sees it within a second. Exits 1 on a bad origin, itemCount or id, or an id in use.

    \b
    Example:
      offerbase datastreams create --org ACME@AdobeOrg --origin https://www.shop.example --json
    """
    from offerbase.store import datastreams

    settings = _settings(data_dir, database_url)
    counts = _item_counts(item_count or [])

    async def run() -> Datastream:
        async with _database(settings, writes=True) as db, db.write() as conn:
            found = await tenants.ensure_sandbox(conn, org, sandbox)
            return await datastreams.create_datastream(
                conn,
                found,
                name=name,
                origins=origin or [],
                item_counts=counts,
                datastream_id=datastream_id,
            )

    created = _refusable(run, "Not created")
    _print_datastream(created, as_json)


@datastreams_app.command("list")
def list_datastreams(
    org: OrgFilter = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print every datastream (of one organization with --org), one per line: with --json as
    the HTTP API shows it. Read-only: exits 2 when the database is missing or not migrated.

    \b
    Example:
      offerbase datastreams list --org ACME@AdobeOrg --json
    """
    from offerbase.store import datastreams, tenants

    settings = _settings(data_dir, database_url, writes=False)

    async def run() -> list[Datastream]:
        async with _database(settings, writes=False) as db, db.read() as conn:
            return await tenants.in_each_sandbox(conn, datastreams.list_datastreams, org)

    for found in asyncio.run(run()):
        _print_datastream(found, as_json)


@datastreams_app.command("delete")
def delete_datastream(
    datastream_id: Annotated[str, typer.Argument(metavar="ID", hidden=True)],
    org: Org,
    sandbox: SandboxName = "prod",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete the datastream ID of the organization's sandbox: Edge requests that name it are
    refused within a second. Exits 2 when the sandbox has no such datastream.

    \b
    Example:
      offerbase datastreams delete 0f8e9b5c-6d1a-4c1e-9f55-1b2d3c4e5f60 --org ACME@AdobeOrg
    """
    from offerbase.store import datastreams

    settings = _settings(data_dir, database_url)

    async def run(db: Database, found: Sandbox) -> bool:
        async with db.write() as conn:
            return await datastreams.delete_datastream(conn, found, datastream_id)

    if not asyncio.run(_in_sandbox(settings, org, sandbox, run, writes=True)):
        typer.echo(f"Sandbox '{sandbox}' of '{org}' has no datastream '{datastream_id}'.", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps({"deleted": datastream_id}))


# -- datasets ----------------------------------------------------------------------------------

datasets_app = _group(
    "Datasets: where batch decisioning workloads (POST /data/core/dwm/workloads/decisions) "
    "write their Parquet files."
)
app.add_typer(datasets_app, name="datasets")


def _print_dataset(found: Dataset, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(found.shown()))
        return
    typer.echo(
        f"{found.id}  org {found.sandbox.org_id}  sandbox {found.sandbox.name}  "
        f"name {found.name!r}  path {found.path}"
    )


@datasets_app.command("create")
def create_dataset(
    org: Org,
    sandbox: Annotated[
        str, typer.Option(metavar="NAME", help="The dataset's sandbox (created when missing).")
    ] = "prod",
    name: Annotated[str, typer.Option(metavar="N", help="A name that lists show.")] = "",
    path: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="The directory workloads write into (created on first use); default "
            "<data dir>/datasets/<id>.",
        ),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a dataset, and its organization and sandbox when they are missing; prints it
    (id, org, sandbox, name, path, created): its id is the xdm:dataSetId of a batch decisioning
    request. Exits 1 on a bad name or path.

    \b
    Example:
      offerbase datasets create --org ACME@AdobeOrg --name "Newsletter offers" --json
    """
    from offerbase.store import datasets

    settings = _settings(data_dir, database_url)

    async def run() -> Dataset:
        async with _database(settings, writes=True) as db, db.write() as conn:
            found = await tenants.ensure_sandbox(conn, org, sandbox)
            return await datasets.create_dataset(
                conn, found, data_dir=settings.data_dir, name=name, path=path
            )

    created = _refusable(run, "Not created")
    _print_dataset(created, as_json)


@datasets_app.command("list")
def list_datasets(
    org: OrgFilter = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print every dataset (of one organization with --org), one per line: with --json as the
    HTTP API shows it. Read-only: exits 2 when the database is missing or not migrated.

    \b
    Example:
      offerbase datasets list --org ACME@AdobeOrg --json
    """
    from offerbase.store import datasets, tenants

    settings = _settings(data_dir, database_url, writes=False)

    async def run() -> list[Dataset]:
        async with _database(settings, writes=False) as db, db.read() as conn:
            return await tenants.in_each_sandbox(conn, datasets.list_datasets, org)

    for found in asyncio.run(run()):
        _print_dataset(found, as_json)


# -- batch -------------------------------------------------------------------------------------

batch_app = _group("Decide for every profile of a file, with no server (docs/batch.md).")
app.add_typer(batch_app, name="batch")
# Counter increments written per transaction after a job (each key once, with its count).


@batch_app.command("decide")
def batch_decide(
    org: Org,
    input_path: Annotated[
        Path,
        typer.Option(
            "--input",
            metavar="PROFILES",
            help="The profiles: a .parquet file (one column per profile field) or an .ndjson "
            "file (one profile per line, as `offerbase profiles import` reads it).",
        ),
    ],
    activity: Annotated[str, typer.Option(metavar="ID", help="The decision (activity) id.")],
    placement: Annotated[str, typer.Option(metavar="ID", help="The placement id.")],
    output: Annotated[
        Path,
        typer.Option(
            metavar="DIR",
            help="Where the Parquet results go; it must not exist or be empty, and it appears "
            "only once every row is decided.",
        ),
    ],
    sandbox: SandboxName = "prod",
    item_count: Annotated[
        int | None,
        typer.Option(
            metavar="N", min=1, max=30, help="Offers per profile (default the placement's)."
        ),
    ] = None,
    include_content: Annotated[
        bool,
        typer.Option("--include-content", help="Add each option's content columns."),
    ] = False,
    workers: Annotated[
        int, typer.Option(metavar="N", min=1, max=64, help="Worker processes (default 1).")
    ] = 1,
    engine: Annotated[
        str,
        typer.Option(
            metavar="NAME",
            help="Where partitions run: local (the default) or dask (the offerbase[dask] "
            "extra; --input and --output may then be fsspec URLs every worker reaches).",
        ),
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="With --engine dask: a running scheduler (tcp://host:8786); without it a "
            "local cluster of --workers processes is started.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Count no capping counter and record no decision event."),
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(metavar="N", help="The seed of the random tie-breaks (default random)."),
    ] = None,
    save_job: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Write the job (catalog, counters read now, scope, clock, seed) as JSON to "
            "FILE and decide nothing: for an engine of your own, e.g. Spark (docs/batch.md).",
        ),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Decide one scope for every profile of PROFILES and write Parquet files to DIR, with a
    progress bar on stderr and a summary (rows, fallbacks, seconds) on stdout.

    Reads the sandbox's catalog and capping counters once; the job's decisions then count
    toward the caps (global caps across the whole job) and are added to the counters, and
    recorded as decision events, at the end (not with --dry-run). Exits 1 on a malformed row
    or an undecidable scope (the message names the row and field), 2 when the file or the
    sandbox does not exist; a failed job leaves no DIR.

    \b
    Example:
      offerbase batch decide --org ACME@AdobeOrg --input audience.parquet \\
        --activity dps:offer-activity:1 --placement dps:offer-placement:1 \\
        --output results/ --workers 2
    """
    import dataclasses
    import random as random_module
    import secrets
    from datetime import UTC, datetime

    from offerbase.batch.distributed import is_url
    from offerbase.batch.partition import BatchInputError, BatchJob
    from offerbase.batch.run import BatchError, Summary, counters_to_read, run_batch
    from offerbase.engine import DecisionError, ScopeRequest
    from offerbase.store.counters import counter_store
    from offerbase.store.library import Library

    settings = _settings(data_dir, database_url, writes=not dry_run)
    if not is_url(input_path) and not input_path.is_file():  # a URL: the engine checks it
        typer.echo(f"No such file: {input_path}", err=True)
        raise typer.Exit(2)
    now = datetime.now(UTC)
    scopes = (ScopeRequest(activity, placement, item_count),)

    async def read(db: Database, found: Sandbox) -> tuple[Sandbox, BatchJob]:
        async with db.read() as conn:
            version, bodies = await Library(conn, found).current_bodies()
        job = BatchJob(
            catalog=bodies,
            catalog_version=version,
            scopes=scopes,
            include_content=include_content,
            now=now,
            seed=seed if seed is not None else random_module.SystemRandom().getrandbits(63),
            counters={},
            workload_id=secrets.token_hex(16),
            dry_run=dry_run,
        )
        # Read once, at job start: the global counters and every per-profile counter the
        # scope's offers have.
        keys, prefixes = counters_to_read(job)
        counters = counter_store(db, settings.redis_url, settings.redis_prefix)
        try:
            start = await counters.get_many(found.pk, keys) if keys else {}
            if prefixes:
                start.update(await counters.read_prefixed(found.pk, prefixes))
        finally:
            await counters.close()
        return found, dataclasses.replace(job, counters=start)

    found, job = asyncio.run(_in_sandbox(settings, org, sandbox, read, writes=not dry_run))
    if save_job is not None:
        from offerbase.batch.distributed import dump_job

        save_job.write_bytes(dump_job(job))
        typer.echo(f"job {job.workload_id} -> {save_job}")
        return

    def record(summary: Summary) -> None:
        asyncio.run(_record_batch(settings, found, summary))

    progress = _progress_bar(input_path)
    try:
        with progress as bar:
            summary = run_batch(
                job,
                input_path,
                output,
                workers=workers,
                engine=engine,
                progress=bar,
                record=record,
                scheduler=scheduler,
            )
    except (BatchInputError, BatchError) as exc:
        typer.echo(f"Batch failed, nothing published: {exc}", err=True)
        raise typer.Exit(1) from exc
    except DecisionError as exc:
        typer.echo(f"Batch failed, nothing published: {exc.detail} ({exc.pointer})", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        typer.echo(
            f"{summary.rows} rows, {summary.fallbacks} fallbacks, {summary.seconds:.1f} s "
            f"-> {summary.output}"
        )


class _Progress:
    """A progress bar on stderr (rich, which typer brings): rows decided, of the Parquet
    file's row count when it is known."""

    def __init__(self, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=True)
        self._task = self._progress.add_task("deciding", total=total)

    def __enter__(self) -> Callable[[int], None]:
        self._progress.start()
        return lambda rows: self._progress.update(self._task, completed=rows)

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def _progress_bar(path: Path) -> _Progress:
    total = None
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            total = pq.ParquetFile(path).metadata.num_rows
        except Exception:  # an unreadable file is reported by the job itself
            total = None
    return _Progress(total)


async def _record_batch(settings: Settings, found: Sandbox, summary: BatchSummary) -> None:
    """After a batch job: its counter increments and report counts (api/batch_records.py)."""
    from offerbase.api.batch_records import record_batch
    from offerbase.store.counters import counter_store

    db = Database.for_settings(settings)
    counters = counter_store(db, settings.redis_url, settings.redis_prefix)
    try:
        await record_batch(db, counters, found, summary.consumption, summary.tally)
    finally:
        await counters.close()
        await db.dispose()
