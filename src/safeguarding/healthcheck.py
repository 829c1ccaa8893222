"""The container's health check: ``python -m safeguarding.healthcheck`` asks the server in this container for
``/_ping`` (liveness) and exits 0 if it answers 200, else 1. It imports nothing of the service.

The URL is ``SAFEGUARDING_HEALTHCHECK_URL`` (default ``https://127.0.0.1:8443/_ping``). Over HTTPS the
certificate is not verified: the check goes to this container's own loopback address, and only asks whether
the process answers; trust in the service's certificate is the clients' business.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request

DEFAULT_URL = "https://127.0.0.1:8443/_ping"


def main() -> int:
    url = os.environ.get("SAFEGUARDING_HEALTHCHECK_URL", DEFAULT_URL)
    if not url.startswith(("http://", "https://")):
        print(f"SAFEGUARDING_HEALTHCHECK_URL must be an http(s) URL, not {url!r}", file=sys.stderr)
        return 1
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # loopback liveness only (see above)
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:  # noqa: S310 - http(s) checked
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
