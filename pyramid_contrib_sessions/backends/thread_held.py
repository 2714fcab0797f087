"""What a thread holds while it lives: one object taken from a pool at the
thread's first use, given back when the thread ends.

A session store sends a command or two per request, from threads that
live long (a WSGI server's workers). Checking a connection out of a pool
and back in for every command costs CPU on each command and takes the
lock every thread shares, so each thread keeps the connection it took
while it lives; a server that starts a thread per request gives it back
as each thread ends, for the next one to take. A forked process takes
objects of its own, never its parent's (their replies would mix).
"""
import os
import threading


class ThreadHeld:
    """Per thread, the object ``take()`` gave it at its first :meth:`get`;
    ``give_back(obj)`` returns it when the thread ends."""

    def __init__(self, take, give_back):
        self._take = take
        self._give_back = give_back
        self._local = threading.local()

    def get(self):
        """This thread's object (taken now, at its first call)."""
        held = getattr(self._local, 'held', None)
        if held is None or held.pid != os.getpid():
            held = self._local.held = _Held(self._take(), self._give_back)
        return held.obj


class _Held:
    """One object a thread took, given back when the thread's hold on it
    is dropped (the thread ended)."""

    def __init__(self, obj, give_back):
        self.obj = obj
        self.pid = os.getpid()
        self._give_back = give_back

    def __del__(self):
        if self.pid == os.getpid():  # a fork's copy is not the child's
            self._give_back(self.obj)
