"""The local cloud's one error type: start-up failed, and the message says what and why."""


class LocalCloudError(RuntimeError):
    pass
