"""Signals between the process that runs a job and the stages running in it."""

from __future__ import annotations

import threading

# Set in the pipeline's process when a stop was requested (the launcher sets it on the
# first Ctrl-C); feed pollers check it and stop polling so the job can drain.
DRAINING = threading.Event()
