"""Device-side: the one failure type of a runner job (standard library only)."""


class RunnerError(Exception):
    """A failure with a machine-readable kind (runtime_missing, model_load, unsupported_op, ...).

    The job skeleton turns it into the result's error document {kind, message}.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
