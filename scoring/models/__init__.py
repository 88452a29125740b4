"""memscore's data: one module per part of the domain."""

from .activity import Activity
from .agents import Agent
from .candidates import Candidate
from .review import Comment, Review
from .runs import CellScore, RunStatus, ScoreCall, ScoringRun
from .snapshots import Memory, MemoryScore, Node, Section, Snapshot
from .training import TrainJob, TrainSample

__all__ = [
    "Activity",
    "Agent",
    "Candidate",
    "CellScore",
    "Comment",
    "Memory",
    "MemoryScore",
    "Node",
    "Review",
    "RunStatus",
    "ScoreCall",
    "ScoringRun",
    "Section",
    "Snapshot",
    "TrainJob",
    "TrainSample",
]
