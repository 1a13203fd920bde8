"""Data containers, validated once at the boundary, and file formats."""

from .growth import growth_rate_from_scores as growth_rate_from_scores
from .io import KINDS as KINDS
from .io import Data as Data
from .io import load_data as load_data
from .io import load_data_and_summary as load_data_and_summary
from .io import save_data as save_data
from .populations import Endpoints as Endpoints
from .populations import Samples as Samples
from .populations import Snapshots as Snapshots
from .store import TrajectoryStore as TrajectoryStore
from .store import TransitionChunk as TransitionChunk
from .store import open_trajectories as open_trajectories
from .tracks import TrackTable as TrackTable
from .tracks import read_tracks as read_tracks
from .trajectories import Trajectories as Trajectories
from .validation import DataError as DataError
