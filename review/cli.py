"""`cutout review serve` and `cutout users ...`."""

from __future__ import annotations

import sys

import click

from cutout.config import Settings


@click.group()
def review():
    """The cutout team's review page."""


@review.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", default=8080, show_default=True)
@click.option("--threads", default=8, show_default=True, help="Requests served at once.")
@click.pass_obj
def serve(settings, host, port, threads):
    """Serve the review page (needs CUTOUT_DATABASE_URL, CUTOUT_BUCKET and CUTOUT_SECRET_KEY)."""
    import waitress

    from review.app import create_app

    app = create_app(settings)
    click.echo(f"review page on http://{host}:{port}/ (log in with a user from `cutout users add`)", err=True)
    waitress.serve(app, host=host, port=port, threads=threads, ident="cutout-review")


def _password(confirm: bool) -> str:
    """From a prompt on a terminal, else the first line of standard input (scripts, compose)."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return sys.stdin.readline().rstrip("\r\n")


@click.group()
def users():
    """Who may log in to the review page."""


def _run(action, *args):
    from review.users import UserError

    settings = click.get_current_context().find_object(Settings).require("database_url")
    try:
        action(settings.database_url, *args)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None


@users.command("add")
@click.argument("name")
def add(name):
    """Add NAME; the password comes from a prompt, or from standard input."""
    from review.users import add_user

    _run(add_user, name, _password(confirm=True))
    click.echo(f"user {name} added")


@users.command("set-password")
@click.argument("name")
def set_password(name):
    """Give NAME a new password (also lets a disabled user in again)."""
    from review.users import set_password as change

    _run(change, name, _password(confirm=True))
    click.echo(f"password of {name} changed")


@users.command("disable")
@click.argument("name")
def disable(name):
    """Lock NAME out at once; their reviews stay theirs."""
    from review.users import disable_user

    _run(disable_user, name)
    click.echo(f"user {name} disabled")


@users.command("list")
def list_():
    """Every user, and whether they can log in."""
    from review.users import list_users

    settings = click.get_current_context().find_object(Settings).require("database_url")
    for name, created, active in list_users(settings.database_url):
        click.echo(f"{name:24} {created:%Y-%m-%d} {'active' if active else 'disabled'}")
