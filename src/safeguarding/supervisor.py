"""The supervisor of several server workers: binds the port, starts the workers, restarts one that dies and
stops them all on SIGTERM/SIGINT (uvicorn's ``Multiprocess``).

``safeguarding serve --workers N`` sets up (sandbox, schema check, settings), then replaces itself with this
module (``python -m safeguarding.supervisor``, same process id), handing it what it needs in the environment
(``SAFEGUARDING_SUPERVISOR``: where to listen, how many workers, the app factory). It imports uvicorn and the
protocol only; each worker imports the service itself and rebuilds its settings (server.app_from_environment).
So the process that does no request work holds ~25 MB, not the ~90 MB of the whole service.
"""

from __future__ import annotations

import json
import os
import sys

from uvicorn.supervisors import Multiprocess

from . import logs
from .protocol import config_for

ENV = "SAFEGUARDING_SUPERVISOR"


def main() -> None:
    plan = json.loads(os.environ.pop(ENV))
    logs.configure(plan["log_level"], plan.get("log_format", "auto"))
    config = config_for(plan["listen"], plan["app"], factory=True, workers=plan["workers"])
    socket = config.bind_socket()
    if plan.get("banner"):  # the sandbox's, on a terminal: once listening, requests wait for the workers
        socket.listen(config.backlog)
        sys.stderr.write(plan["banner"])
        sys.stderr.flush()
    Multiprocess(config, sockets=[socket]).run()


if __name__ == "__main__":
    main()
