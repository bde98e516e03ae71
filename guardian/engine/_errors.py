"""Engine errors, under Guardian's single root."""

from __future__ import annotations

from guardian.errors import ConfigError, GuardianError, UsageError


class EngineError(GuardianError):
    """Base for cloning-engine problems."""


class EngineModelError(EngineError, ConfigError):
    """The shipped converter weights are missing, altered or do not fit their card."""


class AdapterFormatError(EngineError, UsageError):
    """Adapter bytes are malformed, or their privacy record does not match the mechanism."""


class EnrollmentDataError(EngineError, UsageError):
    """The enrollment utterances cannot train an adapter (too few, mismatched texts)."""


class TrainingCancelledError(EngineError):
    """Training stopped on request; no adapter exists, and ``epsilon_spent`` was spent.

    Attributes:
        epsilon_spent: privacy budget the steps taken before the stop consumed.
        history: the accountant history of those steps, to charge to the voice's budget.
    """

    def __init__(self, epsilon_spent: float, history: tuple[tuple[float, float, int], ...]):
        super().__init__(f"training cancelled after spending epsilon {epsilon_spent:.3f}")
        self.epsilon_spent = epsilon_spent
        self.history = history
