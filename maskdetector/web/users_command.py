"""`python app.py users ...`: add, list and remove the accounts that may log in, change passwords, make API tokens.

Quick to start: it reads and writes `<data dir>/users.json` only (no model, no camera), and a running app picks
the change up at its next request.
"""

import argparse
import getpass
import sys

from maskdetector.errors import OneLineParser, UserError
from maskdetector.settings import env_var, resolve, shown_default
from maskdetector.web.accounts import ADD_HINT, ROLES, AccountStore


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="app.py users", description="Accounts that may log in to the app.")
    parser.add_argument(
        "--data-dir", help=f"the app's data folder (default: {shown_default('data_dir')}; {env_var('data_dir')})"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    add = commands.add_parser("add", help="add an account; asks for its password twice")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True, help="admin: everything; viewer: streams and statistics")
    password = commands.add_parser("password", help="change an account's password (its sessions end)")
    password.add_argument("name")
    for sub in (add, password):
        sub.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    commands.add_parser("list", help="the accounts, their roles and whether they have an API token")
    commands.add_parser("remove", help="remove an account and its token").add_argument("name")
    token = commands.add_parser("token", help="make a new API token for an account (replaces its old one)")
    token.add_argument("name")
    return parser


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise UserError("the two passwords differ; nothing was changed")
    return first


def run_users(argv: list[str]) -> tuple[str, str]:
    """Run one `users` command: (what goes to standard output, a note for standard error). UserError for bad input,
    SystemExit(2) with one `error:` line for a usage mistake."""
    args = _parser().parse_args(argv)
    config = {"DATA_DIR": args.data_dir} if args.data_dir else {}
    store = AccountStore(resolve(config)["DATA_DIR"])
    if args.command == "list":
        users = store.users()
        lines = [
            f"{name}\t{user['role']}\t{'token' if user.get('token') else '-'}" for name, user in sorted(users.items())
        ]
        return "".join(line + "\n" for line in lines), "" if users else f"no accounts yet: {ADD_HINT}"
    if args.command == "add":
        store.add(args.name, args.role, _read_password(args.password_stdin))
        return "", f"added {args.role} {args.name!r} to {store.path}"
    if args.command == "password":
        store.set_password(args.name, _read_password(args.password_stdin))
        return "", f"changed the password of {args.name!r}; its sessions have ended"
    if args.command == "remove":
        store.remove(args.name)
        return "", f"removed {args.name!r}"
    token = store.new_token(args.name)
    return (
        token + "\n",
        f"a new API token for {args.name!r} (its old one no longer works): send it as `Authorization: Bearer TOKEN`",
    )
