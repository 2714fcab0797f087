"""``psessions``: list or revoke a user's sessions, or revoke one session
by its handle, from a shell.

Reads the ``sessions.*`` settings as ``clearsessions`` does. A revocation
runs in one transaction of the ``transaction`` package, committed when
the command succeeds and aborted when it fails, so a failed run revokes
nothing.
"""
import argparse
import datetime
import json
import sys
import textwrap

import transaction

from ..exceptions import NoOwnerIndexError, StoreError
from ..owners import owner_index, owner_of, revoke_handles, sessions_of
from .common import (
    EXIT_DONE, EXIT_STORE_FAILED, EXIT_USAGE, CommandFailed, CommandParser,
    add_config_arguments, fail, load_options, one_line, open_factory)

PROG = 'psessions'


def main(argv=sys.argv):
    """Run the command; return its exit status."""
    try:
        return _run(_parse(argv[1:]))
    except SystemExit as exit:  # argparse printed the help
        return exit.code if exit.code else EXIT_DONE
    except CommandFailed as error:
        return fail(PROG, error.status, str(error))


def _parse(arguments):
    """The parsed ``arguments``; ``CommandFailed`` (exit 2) after the
    usage for bad ones."""
    parser, revoking = _parsers()
    args = parser.parse_args(arguments)
    if args.command == 'revoke' and (args.userid is None) == (
            args.handle is None):
        revoking.error('revoke takes a USERID or --handle HANDLE, not both '
                       'or neither')
    return args


def _parsers():
    """The command's parser, and its ``revoke`` subcommand's."""
    parser = CommandParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
        List or revoke the sessions of a user, or revoke one session by
        its handle, in the store configured by the sessions.* settings in
        CONFIG_URI (an .ini file, optionally #app-section).
        Exit status: 0 done, 1 the store failed, 2 bad arguments or
        settings, or a backend that keeps no index of sessions by owner.
        """))
    add_config_arguments(parser)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument('--json', action='store_true',
                        help='print JSON, for scripts')
    commands = parser.add_subparsers(dest='command', required=True)
    listing = commands.add_parser('list', parents=[output],
                                  help="list a user's live sessions")
    listing.add_argument('userid', metavar='USERID')
    revoking = commands.add_parser(
        'revoke', parents=[output],
        help="revoke a user's sessions, or one session by its handle")
    revoking.add_argument('userid', metavar='USERID', nargs='?')
    revoking.add_argument('--handle', help='the handle of one session, '
                                           'whoever owns it')
    return parser, revoking


def _run(args):
    factory = open_factory(load_options(args.config_uri, args.app_name))
    try:
        owner_index(factory)
        if args.command == 'list':
            _print_list(args, _listed(factory, args.userid))
        else:
            _print_revoked(args, _revoke(factory, args))
        return EXIT_DONE
    except NoOwnerIndexError as error:
        raise CommandFailed(EXIT_USAGE, one_line(error)) from error
    except StoreError as error:
        raise CommandFailed(EXIT_STORE_FAILED, one_line(error)) from error
    finally:
        factory.close()


def _owner(userid):
    try:
        return owner_of(userid)
    except ValueError as error:
        raise CommandFailed(EXIT_USAGE, str(error)) from error


def _listed(factory, userid):
    return sessions_of(factory, _owner(userid))


def _revoke(factory, args):
    """How many sessions were revoked, in one transaction: committed, or
    aborted by any error."""
    manager = transaction.TransactionManager(explicit=True)
    with manager:
        if args.handle is not None:
            handles = [args.handle]
        else:
            handles = [found.handle
                       for found in _listed(factory, args.userid)]
        return revoke_handles(factory, handles, manager)


def _when(epoch):
    """An epoch time as ISO 8601 in UTC, to the second."""
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).isoformat(timespec='seconds')


def _print_list(args, sessions):
    rows = [{'handle': found.handle, 'created': _when(found.created),
             'accessed': _when(found.accessed),
             'expires': _when(found.expires)} for found in sessions]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['handle']}  created {row['created']}  accessed "
              f"{row['accessed']}  expires {row['expires']}")
    print(f'{_sessions(len(rows), "live session")} of {args.userid}')


def _print_revoked(args, count):
    if args.json:
        print(json.dumps({'revoked': count}))
    else:
        print(f'revoked {_sessions(count, "session")}')


def _sessions(count, noun):
    """``count`` and ``noun``, in the plural unless there is one."""
    return f'{count} {noun}' if count == 1 else f'{count} {noun}s'
