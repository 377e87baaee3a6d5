"""lipdub: re-animate a speaker's mouth to a new speech track, prove the sync, record it."""

__version__ = "0.1.0"


class LipdubError(Exception):
    """A problem with the user's input or environment, reported as one line naming the file."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def error_text(exc: BaseException) -> str:
    """How a failure reads in a manifest row or a batch summary: ours as written, anything
    else with its type (a bare KeyError message says nothing)."""
    return str(exc) if isinstance(exc, LipdubError) else f"{exc.__class__.__name__}: {exc}"
