"""What tracking raises beyond MLflow's own errors, which propagate unchanged."""

from __future__ import annotations

from engine.errors import NbmError


class TrackingUnavailableError(NbmError):
    """The tracking store could not be reached after every retry."""

    def __init__(self, message: str, *, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        super().__init__(message)


class ModelNotRegisteredError(TrackingUnavailableError):
    """The model was logged to its run (``model_uri``) but no registry version was created.

    State left behind: the run holds the logged model and its artifacts; the registered model may exist
    (it is created before the version) without a version for this run; no alias moved.
    """

    def __init__(self, message: str, *, tracking_uri: str, model_uri: str, run_id: str) -> None:
        self.model_uri = model_uri
        self.run_id = run_id
        super().__init__(message, tracking_uri=tracking_uri)


class ModelNotFoundError(NbmError):
    """A ``models:/`` URI names no registered model, alias or version, or a version whose run has no bundle."""
