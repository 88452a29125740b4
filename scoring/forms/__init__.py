"""Forms for agents (agent.py), snapshot uploads (upload.py) and starting a
run (start_run.py)."""

from .agent import AGENT_NUMBER_LIMITS, AgentForm
from .start_run import StartRunForm
from .upload import SnapshotUploadForm

__all__ = ["AGENT_NUMBER_LIMITS", "AgentForm", "SnapshotUploadForm", "StartRunForm"]
