"""The `tradewindow` command: serve, worker, demo, database migrations and day-to-day admin."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tradewindow.platform.auth import SYSTEM
from tradewindow.platform.db import UnitOfWork, make_engine
from tradewindow.platform.errors import DomainError
from tradewindow.platform.settings import get_settings

app = typer.Typer(help="Trade Window: the single window of a free-trade zone.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
enterprises_app = typer.Typer(help="The enterprise registry.", no_args_is_help=True)
calendar_app = typer.Typer(help="The working-day calendar.", no_args_is_help=True)
tariff_app = typer.Typer(help="The tariff: nomenclature, schedule, agreements, exchange rates.",
                         no_args_is_help=True)
tax_app = typer.Typer(help="Duty and tax quotes.", no_args_is_help=True)
titles_app = typer.Typer(help="Bills of lading: keys, signed actions, publish and verify the hash chains.",
                         no_args_is_help=True)
epcis_app = typer.Typer(help="EPCIS 2.0 events: bulk capture, monitoring checks.", no_args_is_help=True)
cbec_app = typer.Typer(help="Cross-border e-commerce parcels: batch import.", no_args_is_help=True)
bonded_app = typer.Typer(help="Bonded account books: list, balances, vehicles, reconciliation.",
                        no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(enterprises_app, name="enterprises")
app.add_typer(calendar_app, name="calendar")
declarations_app = typer.Typer(help="Customs declarations.", no_args_is_help=True)
app.add_typer(declarations_app, name="declarations")
app.add_typer(tariff_app, name="tariff")
app.add_typer(tax_app, name="tax")
app.add_typer(titles_app, name="titles")
app.add_typer(epcis_app, name="epcis")
app.add_typer(cbec_app, name="cbec")
app.add_typer(bonded_app, name="bonded")
console = Console()
err = Console(stderr=True)


def _engine():
    return make_engine(get_settings().database_url)


def _fail(exc: DomainError) -> None:
    """Errors go to stderr as the API's JSON shape, exit status 1."""
    err.print_json(json.dumps({"errors": [p.as_dict() for p in exc.problems]}))
    raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Create or migrate the database (SQLite or PostgreSQL) to the latest schema."""
    from tradewindow.migrations import current_revision, upgrade

    engine = _engine()
    upgrade(engine, revision)
    console.print(f"Database at revision [bold]{current_revision(engine)}[/] ({engine.url.render_as_string()})")


@app.command()
def serve(host: str = "127.0.0.1", port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
          workers: Annotated[int, typer.Option(help="Server processes (use the cores you have)")] = 1) -> None:
    """Run the web server (UI and API)."""
    import uvicorn

    from tradewindow.web.server import EVENT_LOOP, HTTP_PROTOCOL  # see tradewindow/web/server.py

    if workers > 1:
        uvicorn.run("tradewindow.web.app:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", http=HTTP_PROTOCOL, loop=EVENT_LOOP)
        return
    from tradewindow.web.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info", http=HTTP_PROTOCOL, loop=EVENT_LOOP)


worker_app = typer.Typer()
app.add_typer(worker_app, name="worker")


@worker_app.callback(invoke_without_command=True)
def worker(ctx: typer.Context) -> None:
    """Run the background worker: outbox relay and queued jobs (`tradewindow worker`), or a
    specialised one (`tradewindow worker cbec`)."""
    if ctx.invoked_subcommand is not None:
        return
    import logging

    from tradewindow.notifications import service as notifications
    from tradewindow.platform.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    notifications.install()   # relayed events -> notifications and webhook deliveries
    import tradewindow.bonded.service  # noqa: F401 - moves bonded goods when their declaration is released
    import tradewindow.customs.service  # noqa: F401 - registers its periodic tasks
    import tradewindow.ecommerce.service  # noqa: F401 - decides parcels left undecided by a crash
    import tradewindow.logistics.service  # noqa: F401 - runs the dwell check periodically
    import tradewindow.titles.service  # noqa: F401 - publishes the bills' chain heads periodically
    Worker(_engine(), get_settings().worker_poll_seconds).run_forever()


@app.command()
def demo(host: str = "127.0.0.1", port: Annotated[int, typer.Option(envvar="PORT")] = 8000) -> None:
    """Migrate, load the demo zone if the database is new, and serve the web UI, the API and the
    worker on one address."""
    import uvicorn

    from tradewindow.demo import demo_accounts, is_loaded, load_demo
    from tradewindow.migrations import upgrade
    from tradewindow.notifications import service as notifications
    from tradewindow.platform.worker import run_in_thread
    from tradewindow.web.app import create_app
    from tradewindow.web.server import EVENT_LOOP, HTTP_PROTOCOL

    os.environ["TRADEWINDOW_DEMO_MODE"] = "true"
    _use_reference_epcis_schema()
    get_settings.cache_clear()
    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    if not is_loaded(engine):
        with console.status("Loading the demo zone..."):
            load_demo(engine)
        console.print("Demo zone loaded.")
    notifications.install()   # before the worker relays the demo's events
    run_in_thread(engine, settings.worker_poll_seconds)
    table = Table(title="Demo accounts (password: demo)")
    table.add_column("username")
    table.add_column("role")
    table.add_column("who")
    for account in demo_accounts():
        table.add_row(account.username, account.role, account.description)
    console.print(table)
    console.print(f"Trade Window is at [bold]http://{host}:{port}[/] (API docs: http://{host}:{port}/docs)")
    uvicorn.run(create_app(settings, engine), host=host, port=port, log_level="warning", http=HTTP_PROTOCOL,
                loop=EVENT_LOOP)


def _use_reference_epcis_schema() -> None:
    """The demo captures EPCIS documents when the GS1 schema is at hand in the reference data
    beside the checkout (Trade Window does not ship GS1's files); otherwise capture stays off."""
    if os.environ.get("TRADEWINDOW_EPCIS_SCHEMA"):
        return
    schema = get_settings().reference_data / "epcis" / "EPCIS-JSON-Schema.json"
    if schema.is_file():
        os.environ["TRADEWINDOW_EPCIS_SCHEMA"] = str(schema.resolve())


@users_app.command("create")
def users_create(username: str, role: str,
                 password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                                       confirmation_prompt=True)],
                 display_name: str = "", enterprise: Annotated[str | None, typer.Option(
                     help="The enterprise's credit code (enterprise roles)")] = None,
                 agency: Annotated[str | None, typer.Option(help="The agency's code (officers)")] = None) -> None:
    """Create a user (as the machine's operator)."""
    from tradewindow.registry import service

    try:
        user = service.create_user(UnitOfWork(_engine()), SYSTEM, username, password, role,
                                   display_name, enterprise, agency)
    except DomainError as exc:
        _fail(exc)
    console.print(f"Created user [bold]{user['username']}[/] ({user['role']}), id {user['id']}")


@users_app.command("reset-password")
def users_reset_password(username: str, password: Annotated[str, typer.Option(
        prompt=True, hide_input=True, confirmation_prompt=True)]) -> None:
    """Set a new password for a user; also unlocks the account."""
    from tradewindow.registry import service

    uow = UnitOfWork(_engine())
    user = next((u for u in service.list_users(uow, SYSTEM) if u["username"] == username), None)
    if user is None:
        err.print(f"No user {username!r}.")
        raise typer.Exit(1)
    try:
        service.reset_password(uow, SYSTEM, user["id"], password)
    except DomainError as exc:
        _fail(exc)
    console.print(f"Password of {username} reset.")


@enterprises_app.command("list")
def enterprises_list(q: str | None = None, sector: str | None = None, status: str | None = None,
                     as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List registered enterprises."""
    from tradewindow.registry import service

    result = service.list_enterprises(UnitOfWork(_engine()), SYSTEM, q, sector, status, limit=500)
    if as_json:
        sys.stdout.write(json.dumps(result["items"], default=str, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(title=f"Enterprises ({result['total']})")
    for column in ("credit code", "name", "area", "kinds", "tier", "status"):
        table.add_column(column)
    for e in result["items"]:
        table.add_row(e["uscc"], f"{e['name_zh']}\n{e['name_en']}", e["sector"], ", ".join(e["kinds"]),
                      e["credit_tier"], e["status"])
    console.print(table)


@calendar_app.command("working-days")
def calendar_working_days(start: str, end: str) -> None:
    """Working days after START up to and including END (dates as YYYY-MM-DD)."""
    from tradewindow.platform.calendar_store import load_calendar

    with UnitOfWork(_engine()).read() as conn:
        days = load_calendar(conn).working_days_between(date.fromisoformat(start), date.fromisoformat(end))
    console.print(days)


def _read(path: str) -> str:
    return sys.stdin.read() if path == "-" else open(path, encoding="utf-8-sig").read()


def _tariff_import(kind: str, path: str) -> None:
    from tradewindow.tariff import service

    action = {"hs": service.import_hs, "schedule": service.import_schedule,
              "agreements": service.import_agreements, "exchange-rates": service.import_exchange_rates}[kind]
    try:
        with console.status(f"Loading {kind} from {path}..."):
            summary = action(UnitOfWork(_engine()), SYSTEM, _read(path))
    except DomainError as exc:
        _fail(exc)
    console.print(f"Loaded: {summary}")


@tariff_app.command("import-hs")
def tariff_import_hs(file: str) -> None:
    """Load the HS nomenclature (section,hscode,description,parent,level), replacing the old one."""
    _tariff_import("hs", file)


@tariff_app.command("import-schedule")
def tariff_import_schedule(file: str) -> None:
    """Replace the whole schedule with a CSV (format: tradewindow/tariff/data/README.md)."""
    _tariff_import("schedule", file)


@tariff_app.command("import-agreements")
def tariff_import_agreements(file: str) -> None:
    """Replace the trade agreements with a CSV."""
    _tariff_import("agreements", file)


@tariff_app.command("import-exchange-rates")
def tariff_import_exchange_rates(file: str) -> None:
    """Replace the exchange rates with a CSV."""
    _tariff_import("exchange-rates", file)


@tariff_app.command("export")
def tariff_export(kind: Annotated[str, typer.Argument(help="schedule | agreements | exchange-rates")]) -> None:
    """Write the schedule, agreements or exchange rates as CSV to standard output."""
    from tradewindow.tariff import service

    exports = {"schedule": service.export_schedule, "agreements": service.export_agreements,
               "exchange-rates": service.export_exchange_rates}
    if kind not in exports:
        err.print(f"Unknown export {kind!r}; one of {', '.join(exports)}.")
        raise typer.Exit(2)
    sys.stdout.write(exports[kind](UnitOfWork(_engine())))


@tax_app.command("quote")
def tax_quote(file: Annotated[str, typer.Argument(help="JSON request file, or - for stdin")] = "-") -> None:
    """Quote duty, consumption tax and VAT: the same JSON in and out as POST /api/v1/tax/quote."""
    from tradewindow.tariff import service

    try:
        raw = json.loads(_read(file))
    except json.JSONDecodeError as exc:
        err.print_json(json.dumps({"errors": [{"path": "", "code": "malformed_json", "message": str(exc)}]}))
        raise typer.Exit(1) from exc
    try:
        result = service.quote(UnitOfWork(_engine()), SYSTEM, raw)
    except DomainError as exc:
        _fail(exc)
    sys.stdout.write(json.dumps(result, default=str, ensure_ascii=False, indent=2) + "\n")


def _epcis_actor(enterprise: str | None):
    """The operator, or (with --enterprise) a carrier acting for that enterprise."""
    if enterprise is None:
        return SYSTEM
    from tradewindow.platform.auth import Actor, Role
    from tradewindow.registry import service as registry

    found = registry.enterprise_by_uscc(UnitOfWork(_engine()), enterprise)
    if found is None:
        err.print(f"No enterprise with credit code {enterprise!r}.")
        raise typer.Exit(1)
    return Actor(user_id=None, username=f"cli:{found['uscc']}", role=Role.CARRIER, enterprise_id=found["id"])


@epcis_app.command("capture")
def epcis_capture(file: Annotated[str, typer.Argument(help="NDJSON of events or EPCIS documents, one EPCIS "
                                                       "JSON document, or - for stdin")],
                  enterprise: Annotated[str | None, typer.Option(
                      help="Capture as this enterprise (credit code)")] = None,
                  batch_size: Annotated[int, typer.Option(min=1, max=10000)] = 500) -> None:
    """Capture a file of EPCIS events with a progress bar. Bare events are captured in batches of
    --batch-size; a batch the schema refuses is reported with its lines and skipped; the exit
    status is 1 when anything was refused."""
    from datetime import UTC, datetime

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from tradewindow.logistics import model, service

    actor = _epcis_actor(enterprise)
    uow = UnitOfWork(_engine())
    handle = sys.stdin if file == "-" else open(file, encoding="utf-8-sig")  # noqa: SIM115 - closed below
    size = 0 if file == "-" else os.path.getsize(file)
    totals = {"events": 0, "captured": 0, "repeated": 0, "refused": 0}
    with handle, Progress(TextColumn("[bold]EPCIS capture"), BarColumn(), TextColumn("{task.fields[events]} events"),
                          TimeRemainingColumn(), console=err, transient=False) as progress:
        task = progress.add_task("capture", total=size or None, events=0)
        first = handle.readline()
        try:
            json.loads(first) if first.strip() else None
            whole = None
        except json.JSONDecodeError:
            whole = first + handle.read()     # one pretty-printed document

        def lines():
            if whole is not None:
                yield 1, whole
                progress.update(task, advance=len(whole.encode()))
                return
            yield 1, first
            progress.update(task, advance=len(first.encode()))
            for number, line in enumerate(handle, start=2):
                yield number, line
                progress.update(task, advance=len(line.encode()))

        for batch in model.ndjson_batches(lines(), datetime.now(UTC), batch_size):
            where = f"line {batch.first}" if batch.first == batch.last else f"lines {batch.first}-{batch.last}"
            if batch.document is None:
                totals["refused"] += 1
                err.print(f"{where}: {batch.problem}")
                continue
            try:
                result = service.capture(uow, actor, batch.document)
            except DomainError as exc:
                totals["refused"] += len(batch.event_lines) or 1
                for problem in exc.problems[:20]:
                    err.print(f"{_epcis_line(batch, problem.path) or where}: {problem.path or '(document)'} "
                              f"{problem.code}: {problem.message}")
                continue
            for key in ("events", "captured", "repeated"):
                totals[key] += result[key]
            progress.update(task, events=totals["events"])
    console.print(f"{totals['events']} events: {totals['captured']} captured, {totals['repeated']} repeats, "
                  f"{totals['refused']} refused.")
    if totals["refused"]:
        raise typer.Exit(1)


def _epcis_line(batch, path: str) -> str | None:
    """The line of a wrapped event that a problem's path (epcisBody.eventList[i]...) points into."""
    import re

    match = re.match(r"epcisBody\.eventList\[(\d+)\]", path)
    if batch.event_lines and match and int(match[1]) < len(batch.event_lines):
        return f"line {batch.event_lines[int(match[1])]}"
    return None


@epcis_app.command("check-dwell")
def epcis_check_dwell() -> None:
    """Raise dwell alerts for equipment standing still too long with no event since."""
    from tradewindow.logistics import service

    raised = service.check_dwell(UnitOfWork(_engine()), SYSTEM)
    console.print(f"{raised} dwell alerts raised.")


@titles_app.command("publish-head")
def titles_publish_head() -> None:
    """Publish the head of every bill of lading's chain now (the worker does it periodically); also
    appended to $TRADEWINDOW_TITLE_CHECKPOINT_FILE when that is set."""
    from tradewindow.titles import service

    checkpoint = service.publish_heads(UnitOfWork(_engine()), SYSTEM)
    if checkpoint["hash"] is None:
        console.print("No bill of lading has been issued yet: nothing to publish.")
        return
    state = "published" if checkpoint["published"] else "unchanged since the last checkpoint"
    console.print(f"Checkpoint {checkpoint['hash']} ({checkpoint['titles']} bills, root {checkpoint['root']}): {state}",
                  soft_wrap=True)


@titles_app.command("verify")
def titles_verify() -> None:
    """Verify every bill's chain (signatures, links, rules, published heads) and the checkpoint
    log; exit status 1 when anything is broken."""
    from tradewindow.titles import service

    result = service.verify_all(UnitOfWork(_engine()))
    for broken in result["broken"]:
        err.print(f"[red]{broken['bol_number']}[/]: {broken['message']} ({broken['code']})")
    if not result["checkpoints"]["valid"]:
        err.print(f"[red]checkpoints[/]: {result['checkpoints']['message']}")
    console.print(f"{result['bills']} bills, {len(result['broken'])} broken; "
                  f"{result['checkpoints']['checkpoints']} checkpoints")
    if result["broken"] or not result["checkpoints"]["valid"]:
        raise typer.Exit(1)


# --- titles signed on this machine: the private key never leaves it ------------------------------

ServerUrl = Annotated[str, typer.Option("--url", envvar="TRADEWINDOW_URL", help="The Trade Window server.")]
ApiKey = Annotated[str, typer.Option("--api-key", envvar="TRADEWINDOW_API_KEY",
                                     help="An API key of your user (Account → API keys).")]
KeyFile = Annotated[str, typer.Option("--key", help="Your Ed25519 private key file (tradewindow titles keygen).")]


@titles_app.command("keygen")
def titles_keygen(out: Annotated[str, typer.Option("--out", help="Where to write the private key (mode 0600).")],
                  force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False) -> None:
    """Make an Ed25519 signing key on this machine and print its public key to register."""
    from pathlib import Path

    from tradewindow.titles import client, model

    raw = model.new_private_key()
    try:
        client.write_key_file(Path(out), raw, overwrite=force)
    except FileExistsError:
        err.print(f"{out} exists; keep it, or pass --force to replace it (its key will no longer sign).")
        raise typer.Exit(1) from None
    public = client.public_key_text(raw)
    err.print(f"Private key written to {out} (readable by you only). It never leaves this machine.\n"
              f"Register the public key below: tradewindow titles register-key --key {out}, or paste it "
              "on the Signing key page.")
    sys.stdout.write(public["pem"])
    err.print(f"fingerprint {public['fingerprint']}")


def _titles_signed(url: str, api_key: str, key: str, call) -> None:
    """Run `call(client)` against the server with the local key; print the result as JSON, or the
    server's errors on stderr with exit status 1."""
    from pathlib import Path

    from tradewindow.titles import client as titles_client

    try:
        remote = titles_client.TitlesClient(url, api_key, titles_client.read_key_file(Path(key)))
        try:
            result = call(remote)
        finally:
            remote.close()
    except titles_client.ClientError as exc:
        err.print_json(json.dumps({"errors": exc.errors}))
        raise typer.Exit(1) from None
    console.print_json(json.dumps(result, default=str))


@titles_app.command("register-key")
def titles_register_key(key: KeyFile, api_key: ApiKey, url: ServerUrl = "http://127.0.0.1:8000") -> None:
    """Register the public half of your key file as your enterprise's signing key."""
    _titles_signed(url, api_key, key, lambda remote: remote.register_key())


@titles_app.command("issue")
def titles_issue(file: Annotated[str, typer.Argument(help="The bill's particulars as JSON (see POST "
                                                          "/api/v1/titles), or - for stdin")],
                 key: KeyFile, api_key: ApiKey, url: ServerUrl = "http://127.0.0.1:8000") -> None:
    """Issue a bill of lading (railway or sea bill), signed with your key file."""
    try:
        particulars = json.loads(_read(file))
    except ValueError as exc:
        err.print(f"{file} is not JSON: {exc}")
        raise typer.Exit(1) from None
    _titles_signed(url, api_key, key, lambda remote: remote.issue(particulars))


@titles_app.command("endorse")
def titles_endorse(number: str, to: Annotated[str, typer.Option("--to", help="The endorsee's credit code.")],
                   key: KeyFile, api_key: ApiKey, url: ServerUrl = "http://127.0.0.1:8000") -> None:
    """Endorse a bill you hold to another enterprise, signed with your key file."""
    _titles_signed(url, api_key, key, lambda remote: remote.act(number, "endorse", to))


@titles_app.command("pledge")
def titles_pledge(number: str, bank: Annotated[str, typer.Option("--bank", help="The bank's credit code.")],
                  key: KeyFile, api_key: ApiKey, url: ServerUrl = "http://127.0.0.1:8000") -> None:
    """Pledge a bill you hold to a bank, signed with your key file."""
    _titles_signed(url, api_key, key, lambda remote: remote.act(number, "pledge", bank))


@titles_app.command("release")
def titles_release(number: str, key: KeyFile, api_key: ApiKey, url: ServerUrl = "http://127.0.0.1:8000") -> None:
    """Release your bank's pledge on a bill, signed with your key file."""
    _titles_signed(url, api_key, key, lambda remote: remote.act(number, "release_pledge"))


@titles_app.command("take-over")
def titles_take_over(number: str, key: KeyFile, api_key: ApiKey, url: ServerUrl = "http://127.0.0.1:8000") -> None:
    """On the pledgor's default, take over a bill pledged to your bank, signed with your key file."""
    _titles_signed(url, api_key, key, lambda remote: remote.act(number, "take_over"))


@titles_app.command("surrender")
def titles_surrender(number: str, key: KeyFile, api_key: ApiKey, url: ServerUrl = "http://127.0.0.1:8000") -> None:
    """Surrender a bill you hold to its issuer against delivery (final), signed with your key file."""
    _titles_signed(url, api_key, key, lambda remote: remote.act(number, "surrender"))


@titles_app.command("void")
def titles_void(number: str, key: KeyFile, api_key: ApiKey, url: ServerUrl = "http://127.0.0.1:8000") -> None:
    """Void a bill you issued, before it first changes hands (final), signed with your key file."""
    _titles_signed(url, api_key, key, lambda remote: remote.act(number, "void"))


@declarations_app.command("lodge")
def declarations_lodge(
        file: Annotated[str, typer.Argument(help="JSON (one filing or a list), NDJSON or CSV; - for stdin")],
        user: Annotated[str, typer.Option(help="The trader or broker lodging (as this user)")]) -> None:
    """Lodge every filing of a file as the given user. Prints one JSON result per filing
    (created, repeat or refused with its errors); exit status 1 when any was refused."""
    from tradewindow.customs import model as customs_model
    from tradewindow.customs import service as customs
    from tradewindow.registry import service as registry

    uow = UnitOfWork(_engine())
    actor = registry.actor_by_username(uow, user)
    if actor is None:
        err.print(f"No active user {user!r}.")
        raise typer.Exit(2)
    filings = _read_filings(file, customs_model)
    refused = 0
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("Lodging", total=len(filings))
        for raw in filings:
            reference = raw.get("client_reference") if isinstance(raw, dict) else None
            try:
                lodged = customs.lodge_declaration(uow, actor, raw)
                result = {"client_reference": reference, "result": "created" if lodged.created else "repeat",
                          "id": lodged.declaration["id"], "number": lodged.declaration["number"],
                          "status": lodged.declaration["status"], "lane": lodged.declaration["lane"],
                          "total_due": lodged.declaration["total_due"]}
            except DomainError as exc:
                refused += 1
                result = {"client_reference": reference, "result": "refused",
                          "errors": [p.as_dict() for p in exc.problems]}
            sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
            progress.advance(task)
    if refused:
        raise typer.Exit(1)


def _read_filings(path: str, customs_model) -> list:
    text = _read(path)
    if path.lower().endswith(".csv"):
        filings, problems = customs_model.filings_from_csv(text)
        if problems:
            _fail(DomainError(problems.items))
        return filings
    try:
        parsed = json.loads(text)
        return parsed if isinstance(parsed, list) else [parsed]
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            err.print_json(json.dumps({"errors": [{"path": "", "code": "malformed_json", "message": str(exc)}]}))
            raise typer.Exit(1) from exc



def _bonded_book(uow: UnitOfWork, book: str) -> dict:
    """A book by id, or by name when only one book has it."""
    from tradewindow.bonded import service

    books = service.list_books(uow, SYSTEM)
    found = [b for b in books if b["id"] == book] or [b for b in books if b["name"] == book]
    if len(found) != 1:
        err.print(f"{'No' if not found else 'More than one'} account book {book!r}; give its id "
                  "(tradewindow bonded books).")
        raise typer.Exit(1)
    return found[0]


@bonded_app.command("books")
def bonded_books(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every bonded account book, with its enterprise and what it holds."""
    from tradewindow.bonded import service

    uow = UnitOfWork(_engine())
    books = [service.get_book(uow, SYSTEM, b["id"]) for b in service.list_books(uow, SYSTEM)]
    if as_json:
        sys.stdout.write(json.dumps([{k: b[k] for k in ("id", "kind", "name", "enterprise_name", "items")}
                                     for b in books], default=str, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(title=f"Bonded account books ({len(books)})")
    for column in ("id", "name", "kind", "enterprise", "held"):
        table.add_column(column)
    for b in books:
        held = "\n".join(f"{i['tariff_code']} {i['description']}: {i['held']} {i['unit']}" for i in b["items"])
        table.add_row(b["id"], b["name"], b["kind"], b["enterprise_name"] or "", held)
    console.print(table)


@bonded_app.command("units")
def bonded_units(book: Annotated[str, typer.Argument(help="The book's id or name")],
                 q: Annotated[str, typer.Option(help="Part of a VIN or container number")] = "") -> None:
    """The vehicles and containers of a book and where each is."""
    from tradewindow.bonded import service

    uow = UnitOfWork(_engine())
    units = service.list_units(uow, SYSTEM, _bonded_book(uow, book)["id"], q)
    table = Table(title=f"Serialised goods ({len(units)})")
    for column in ("serial", "goods", "where", "entry declaration"):
        table.add_column(column)
    for u in units:
        table.add_row(u["serial"], u["description"], u["location"] + (" (reserved)" if u["reserved"] else ""),
                      u["declaration_number"])
    console.print(table)


BONDED_ACTIONS = ("admit", "release", "reexport", "destroy")


@bonded_app.command("move")
def bonded_move(action: Annotated[str, typer.Argument(help="admit | release | reexport | destroy")],
                book: Annotated[str, typer.Argument(help="The book's id or name")],
                file: Annotated[str, typer.Argument(help="The request as JSON (the API's body); - for stdin")],
                user: Annotated[str, typer.Option(help="The user acting (the book's trader, or customs to destroy)")],
                declaration: Annotated[str, typer.Option(help="admit from a CSV (line,serial): the entry declaration")]
                = "") -> None:
    """Admit the goods of a released bonded-entry declaration, release goods to the domestic market,
    re-export or destroy them: the same JSON body as the API's, as the given user. Prints the
    result as JSON; errors as the API's error shape with exit status 1."""
    from tradewindow.bonded import service
    from tradewindow.registry import service as registry

    if action not in BONDED_ACTIONS:
        err.print(f"Unknown action {action!r}; one of {', '.join(BONDED_ACTIONS)}.")
        raise typer.Exit(2)
    uow = UnitOfWork(_engine())
    actor = registry.actor_by_username(uow, user)
    if actor is None:
        err.print(f"No active user {user!r}.")
        raise typer.Exit(2)
    if file.lower().endswith(".csv"):
        raw = _bulk_admission(action, file, declaration)
    else:
        try:
            raw = json.loads(_read(file))
        except json.JSONDecodeError as exc:
            err.print_json(json.dumps({"errors": [{"path": "", "code": "malformed_json", "message": str(exc)}]}))
            raise typer.Exit(1) from exc
    book_id = _bonded_book(uow, book)["id"]
    act = {"admit": service.admit_entry, "release": service.release_to_domestic,
           "reexport": service.reexport, "destroy": service.destroy}[action]
    try:
        result = act(uow, actor, book_id, raw)
    except DomainError as exc:
        _fail(exc)
    sys.stdout.write(json.dumps(dataclasses.asdict(result), default=str, ensure_ascii=False, indent=2) + "\n")


def _bulk_admission(action: str, file: str, declaration: str) -> dict:
    """Many vehicles at once: a CSV of `line,serial` rows for the admission of one declaration."""
    from tradewindow.bonded import model as bonded_model

    if action != "admit" or not declaration:
        err.print("A CSV file admits vehicles: `bonded move admit BOOK FILE.csv --declaration NUMBER`.")
        raise typer.Exit(2)
    serials, problems = bonded_model.serials_from_csv(_read(file))
    if problems:
        _fail(DomainError(problems.items))
    return {"declaration": declaration, "serials": serials}


@bonded_app.command("reconciliation")
def bonded_reconciliation(book: Annotated[str, typer.Argument(help="The book's id or name")],
                          start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD")],
                          end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD")],
                          as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout")] = False) -> None:
    """The reconciliation report of a book over a period: opening, receipts, removals by kind,
    adjustments, closing per item. Exit status 1 when an item does not balance."""
    from tradewindow.bonded import service

    uow = UnitOfWork(_engine())
    try:
        report = service.reconciliation(uow, SYSTEM, _bonded_book(uow, book)["id"], date.fromisoformat(start),
                                        date.fromisoformat(end))
    except ValueError as exc:
        err.print(f"Dates are written YYYY-MM-DD: {exc}")
        raise typer.Exit(2) from exc
    except DomainError as exc:
        _fail(exc)
    if as_csv:
        sys.stdout.write(service.reconciliation_csv(report))
    else:
        table = Table(title=f"{report['book']['name']}: {start} to {end}")
        # Only the kinds of removal the period saw, so that the table fits a terminal.
        kinds = [k for k in report["removal_kinds"] if any(row["removals"][k] != "0" for row in report["items"])]
        for column in ("tariff line", "description", "opening", "receipts", *kinds, "adjustments", "closing"):
            table.add_column(column)
        for row in report["items"]:
            table.add_row(row["tariff_code"], row["description"], row["opening"], row["receipts"],
                          *[row["removals"][k] for k in kinds], row["adjustments"], row["closing"])
        console.print(table)
    if not all(row["balances"] for row in report["items"]):
        err.print("The book does not balance.")
        raise typer.Exit(1)


@cbec_app.command("import")
def cbec_import(file: Annotated[str, typer.Argument(help="NDJSON: one order, payment or waybill per line, "
                                                       "each with its \"kind\"; - for stdin")],
                out: Annotated[str | None, typer.Option(help="Write the decided parcels here as NDJSON")] = None,
                inspection_rate: Annotated[float, typer.Option(min=0, max=1, help="Share of clean parcels "
                                                               "drawn for inspection")] = 0.01,
                seed: Annotated[str, typer.Option(help="Seed of the inspection draw")] = "tradewindow") -> None:
    """Import a batch of e-commerce documents with a progress bar, then decide the parcels made
    complete (limits per buyer in ordered_at order) and print the summary. Runs as the
    administrator: orders belong to the platform whose credit code is their platform_code. Exit
    status 1 when a line was refused."""
    from decimal import Decimal

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from tradewindow.ecommerce import model, service

    uow = UnitOfWork(_engine())
    sampling = model.Sampling(rate=Decimal(str(inspection_rate)), seed=seed)
    handle = sys.stdin if file == "-" else open(file, encoding="utf-8-sig")  # noqa: SIM115 - closed below
    results = open(out, "w", encoding="utf-8") if out else None  # noqa: SIM115 - closed below
    size = 0 if file == "-" else os.path.getsize(file)
    with handle, Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                          TextColumn("{task.completed:.0f}"), TimeElapsedColumn(), console=err) as progress:
        reading = progress.add_task("Documents", total=size or None)
        deciding = progress.add_task("Parcels decided", total=None)

        def lines():
            for line in handle:
                progress.update(reading, advance=len(line.encode()))
                yield line

        def decided(row: dict) -> None:
            progress.update(deciding, advance=1)
            if results is not None:
                results.write(json.dumps(service.result_line(row), ensure_ascii=False) + "\n")

        try:
            summary = service.import_batch(uow, SYSTEM, service.ndjson_objects(lines()), sampling=sampling,
                                           on_decided=decided)
        except DomainError as exc:
            _fail(exc)
        finally:
            if results is not None:
                results.close()
    console.print_json(json.dumps(summary.as_dict(refused_limit=100), ensure_ascii=False))
    if summary.refused:
        raise typer.Exit(1)


@cbec_app.command("generate")
def cbec_generate(parcels: Annotated[int, typer.Option(min=1, help="Number of parcels")],
                  out: Annotated[str, typer.Option(help="Directory for orders/payments/waybills.ndjson")],
                  seed: Annotated[int, typer.Option(help="Seed: the same seed writes the same files")] = 1,
                  defect_rate: Annotated[float, typer.Option(min=0, max=0.1, help="Share of parcels with "
                                                             "each kind of defect")] = 0.01) -> None:
    """Write realistic test files of a shopping festival: repeat buyers, out-of-order records and
    a few percent of each defect. Streams: any number of parcels in bounded memory."""
    from pathlib import Path

    from tradewindow.ecommerce import generate

    counts = generate.generate(generate.Options(parcels=parcels, seed=seed, defect_rate=defect_rate), Path(out))
    console.print_json(json.dumps(dataclasses.asdict(counts)))


@cbec_app.command("clear")
def cbec_clear(orders: Annotated[str, typer.Option(help="Orders, NDJSON")],
               payments: Annotated[str, typer.Option(help="Payments, NDJSON")],
               waybills: Annotated[str, typer.Option(help="Waybills, NDJSON")],
               out: Annotated[str, typer.Option(help="Results, one parcel per line (NDJSON)")],
               inspection_rate: Annotated[float, typer.Option(min=0, max=1, help="Share of clean parcels "
                                                              "drawn for inspection")] = 0.01,
               seed: Annotated[str, typer.Option(help="Seed of the inspection draw")] = "tradewindow",
               partitions: Annotated[int | None, typer.Option(min=1, help="Temporary partitions (default: "
                                                              "by size); results do not depend on it")] = None,
               summary_file: Annotated[str | None, typer.Option("--summary", help="Also write the summary "
                                                                "here (default: OUT.summary.json)")] = None,
               timing: Annotated[str | None, typer.Option(metavar="FILE", help="Append each pass's wall and CPU "
                                                          "seconds per process to FILE (JSON lines)")] = None) -> None:
    """Clear a batch of parcels from three files (streamed, memory bounded): match, check, tax,
    limits per buyer in ordered_at order, decide and store; results to OUT, the summary printed
    and stored beside it. Runs as the administrator."""
    import time
    from decimal import Decimal
    from pathlib import Path

    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    from tradewindow.ecommerce import bulk, model

    unreadable = [f"--{option} {path}" for option, path in (("orders", orders), ("payments", payments),
                                                            ("waybills", waybills)) if not os.path.isfile(path)]
    if unreadable:
        err.print("No such file: " + "; ".join(unreadable))
        raise typer.Exit(2)
    uow = UnitOfWork(_engine())
    sampling = model.Sampling(rate=Decimal(str(inspection_rate)), seed=seed)
    size = sum(os.path.getsize(p) for p in (orders, payments, waybills))
    began = time.perf_counter()
    with open(out, "w", encoding="utf-8") as results, Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f}"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err) as progress:
        reading = progress.add_task("Reading (bytes)", total=size, rate="")
        matching = progress.add_task("Matched orders", total=None, rate="")
        deciding = progress.add_task("Parcels decided", total=None, rate="")
        tasks = {"read": reading, "matched": matching, "decided": deciding}
        done = {"read": 0, "matched": 0, "decided": 0}

        def advance(stage: str, count: int) -> None:
            done[stage] += count
            if stage == "read" and done[stage] % (1 << 20) > count:
                return      # the bar moves by the megabyte: a refresh per line would cost more than the line
            rate = f"{done[stage] / max(time.perf_counter() - began, 1e-6):,.0f}/s" if stage != "read" else ""
            progress.update(tasks[stage], completed=done[stage], rate=rate)

        try:
            summary = bulk.clear(uow, SYSTEM, Path(orders), Path(payments), Path(waybills), results, sampling,
                                 partitions, advance, timing=Path(timing) if timing else None)
        except DomainError as exc:
            _fail(exc)
        progress.update(reading, completed=size)
    elapsed = time.perf_counter() - began
    report = {**summary.as_dict(), "seconds": round(elapsed, 3),
              "parcels_per_second": round(summary.parcels / elapsed) if elapsed else None}
    text = json.dumps(report, ensure_ascii=False, indent=2)
    Path(summary_file or out + ".summary.json").write_text(text + "\n", encoding="utf-8")
    console.print_json(text)


@worker_app.command("cbec")
def worker_cbec(partitions: Annotated[str | None, typer.Option(
                    help="Comma-separated partitions to consume (NATS; default: all)")] = None,
                inspection_rate: Annotated[float, typer.Option(min=0, max=1, help="Share of clean "
                                           "parcels drawn for inspection")] = 0.01,
                batch: Annotated[int, typer.Option(min=1, max=10_000, help="Documents applied per "
                                                   "transaction and partition")] = 1000) -> None:
    """Apply e-commerce documents from the stream until stopped: NATS JetStream when
    TRADEWINDOW_JOB_QUEUE=nats (TRADEWINDOW_NATS_URL), otherwise the database job queue. Each
    batch is stored and its parcels decided under their buyers' locks, then acknowledged. Run as
    many as you like; a killed one's documents are delivered again to the others."""
    import logging
    import signal
    import threading
    from decimal import Decimal

    from tradewindow.ecommerce import model, stream

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = get_settings()
    engine = _engine()
    queue = stream.record_queue(settings, lambda: UnitOfWork(engine))
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    chosen = [int(p) for p in partitions.split(",")] if partitions else None
    logging.getLogger("tradewindow.cbec.stream").info("cbec worker started on %s (partitions %s)",
                                                      settings.job_queue, chosen or "all")
    stream.run_forever(queue, lambda: UnitOfWork(engine), stopping, chosen,
                       sampling=model.Sampling(rate=Decimal(str(inspection_rate))), batch=batch)
    queue.close()


@cbec_app.command("stream-worker", hidden=True)
def cbec_stream_worker(partitions: Annotated[str | None, typer.Option()] = None,
                       inspection_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.01,
                       batch: Annotated[int, typer.Option(min=1, max=10_000)] = 1000) -> None:
    """The former name of `tradewindow worker cbec`."""
    worker_cbec(partitions, inspection_rate, batch)


if __name__ == "__main__":
    app()
