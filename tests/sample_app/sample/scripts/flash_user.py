"""Leave a message in a user's session, shown on their next page::

    flash_user development.ini -- SESSION_ID 'Your invoice is ready.'

(``--``: a session id may begin with ``-``.)
"""
import argparse
import sys

from pyramid.paster import bootstrap, setup_logging

from pyramid_contrib_sessions import open_session


def flash_user(request, session_id, message):
    """Flash ``message`` into the stored session ``session_id``, in
    ``request.tm``'s current transaction; False when there is no such
    session (unknown or expired)."""
    session = open_session(request, session_id)
    if session is None:
        return False
    session.flash(message)
    return True


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=argv[0],
                                     description=__doc__.splitlines()[0])
    parser.add_argument('config_uri')
    parser.add_argument('session_id')
    parser.add_argument('message')
    return parser.parse_args(argv[1:])


def main(argv=sys.argv):
    args = parse_args(argv)
    setup_logging(args.config_uri)
    with bootstrap(args.config_uri) as env:
        request = env['request']
        with request.tm:  # commits at the end of the block, aborts on error
            found = flash_user(request, args.session_id, args.message)
    if not found:
        print(f'no session {args.session_id!r}', file=sys.stderr)
        return 1
    return 0
