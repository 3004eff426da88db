"""``python -m gateway.serve``: uvicorn's command line, unchanged, with one fix for ``--workers``.

With several workers, uvicorn's master process binds the listening socket and hands it to the
workers. On SIGTERM or SIGINT each worker stops accepting at once and drains its open requests
(gateway/observability.py ``Lifecycle``), but the master keeps its own copy of the socket open
until the last worker has exited: the kernel goes on completing connections that no process
will ever accept, and a client that connects during the drain hangs until the master exits (up
to ``--timeout-graceful-shutdown``), then is reset. Here the master closes its copy as soon as
it is told to stop; once the workers have closed theirs (the first thing they do) the socket
is gone, and a new connection is refused at once, so a load balancer or client retries
elsewhere. SIGHUP (replace the workers) and SIGTTOU (one worker fewer) are not shutdowns and
keep the socket.

It imports only uvicorn: the master never loads Django, as with ``uvicorn`` itself.
"""

from __future__ import annotations

import contextlib
import importlib

from uvicorn.supervisors import multiprocess

# The module (``uvicorn.main`` as an attribute is the command, which the package re-exports).
uvicorn_main = importlib.import_module("uvicorn.main")


class Multiprocess(multiprocess.Multiprocess):
    def handle_int(self) -> None:
        self.stop_listening()
        super().handle_int()

    def handle_term(self) -> None:
        self.stop_listening()
        super().handle_term()

    def stop_listening(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


def main() -> None:
    uvicorn_main.Multiprocess = Multiprocess  # type: ignore[attr-defined]  # the one supervisor it runs
    uvicorn_main.main()


if __name__ == "__main__":
    main()
