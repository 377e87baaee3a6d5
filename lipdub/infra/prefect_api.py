"""Start Prefect's temporary local API early, so it boots while lipdub loads its models.

With no PREFECT_API_URL configured, Prefect starts a local API server in a
subprocess the first time a flow runs, which costs seconds. Starting it in a thread
at the beginning of a CLI command overlaps that with imports and model loading. With
a server configured (the production setup) this does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def start_local_api_in_background() -> Callable[[], None]:
    """Returns wait(): call it before the first flow runs."""
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return lambda: None
    from prefect.server.api.server import SubprocessASGIServer

    failure: list[BaseException] = []

    def boot() -> None:
        try:
            SubprocessASGIServer().start()
        except BaseException as exc:  # surfaced by the flow's own client if it matters
            failure.append(exc)

    thread = threading.Thread(target=boot, name="prefect-local-api", daemon=True)
    thread.start()
    return thread.join
