"""The simplest explanation: description lengths, sparse formulas, model selection."""

from ..mdl.codes import CodeLength as CodeLength
from ..mdl.codes import Stats as Stats
from .candidates import Selection as Selection
from .end_states import END_STATE_FAMILIES as END_STATE_FAMILIES
from .end_states import EndStateSelection as EndStateSelection
from .end_states import select_end_states as select_end_states
from .families import AUTO_FAMILIES as AUTO_FAMILIES
from .families import SELECT_FAMILIES as SELECT_FAMILIES
from .families import auto_families as auto_families
from .snapshot_pairs import select_snapshot_pairs as select_snapshot_pairs
from .snapshot_regime import RegimeDecision as RegimeDecision
from .snapshot_regime import decide_regime as decide_regime
from .trajectories import select as select
