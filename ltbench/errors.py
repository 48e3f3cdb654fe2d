"""User-facing errors: each message says what went wrong and what to do next."""


class LtbenchError(Exception):
  """Base class for errors a user can hit; the CLI prints the message without a traceback."""


class DataError(LtbenchError):
  """Missing, corrupt or malformed data (names the file, line or field)."""


class SpecError(LtbenchError):
  """Unknown spec, row, data set, metric or option (lists the valid choices)."""


class TrainingError(LtbenchError):
  """A trial failed (e.g. NaN loss); names row, seed and epoch."""


class ResultsError(LtbenchError):
  """A results folder that cannot be written, is locked by another run, or holds a damaged
  file (names the folder or file and what to do)."""
