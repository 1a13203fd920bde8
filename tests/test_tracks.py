"""Particle-tracking tables: trackpy tables written by pandas and TrackMate 7 spot exports, from
a simulated 2-D double well with gaps, read as trajectories (gaps masked, not closed up) and
fitted from the command line."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import iel
from iel.cli import app
from iel.data import DataError, load_data, read_tracks
from iel.estimators import Rollout

TEMPERATURE = 0.5
DT = 0.01
FRAMES = 300
N = 100


@pytest.fixture(scope="module")
def tracks():
    """Langevin runs of E = Σ (x_j² − 1)² in 2-D; each particle starts at its own frame and
    is lost in a quarter of the frames (blinking: runs of one or more missing frames).
    Returns ``(x (N, FRAMES, 2), observed (N, FRAMES))``."""
    sim = iel.simulate_system("double_well", dim=2, n=N, steps=FRAMES - 1, dt=DT,
                              temperature=TEMPERATURE, seed=3)  # fmt: skip
    rng = np.random.default_rng(7)
    observed = rng.random((N, FRAMES)) > 0.25
    for i in range(N):
        observed[i, : rng.integers(0, 30)] = False  # tracks begin at different frames
    return np.asarray(sim.x), observed


def trackpy_frame(x, observed) -> pd.DataFrame:
    """trackpy's columns after locate + link, in its order (y before x), with extras."""
    i, f = np.nonzero(observed)
    rng = np.random.default_rng(0)
    m = len(i)
    return pd.DataFrame({
        "y": x[i, f, 1], "x": x[i, f, 0], "mass": rng.uniform(100, 200, m),
        "size": rng.uniform(1, 2, m), "ecc": rng.uniform(0, 0.3, m),
        "signal": rng.uniform(5, 10, m), "raw_mass": rng.uniform(1e3, 2e3, m),
        "ep": rng.uniform(0.01, 0.1, m), "frame": f, "particle": i + 100,
    })  # fmt: skip


TRACKMATE_HEADER = [
    "LABEL,ID,TRACK_ID,QUALITY,POSITION_X,POSITION_Y,POSITION_Z,POSITION_T,FRAME,RADIUS,"
    "VISIBILITY,MANUAL_SPOT_COLOR,MEAN_INTENSITY_CH1",
    "Label,Spot ID,Track ID,Quality,X,Y,Z,T,Frame,Radius,Visibility,Manual spot color,"
    "Mean intensity ch1",
    "Label,Spot ID,Track ID,Quality,X,Y,Z,T,Frame,R,Visibility,Spot color,Mean ch1",
    ",,,(quality),(micron),(micron),(micron),(sec),,(micron),,,(counts)",
]


def write_trackmate(path, x, observed, seconds_per_frame, untracked=3):
    """A TrackMate 7 spot table (rows in spot order, not by track), spots in no track
    (TRACK_ID empty or None) and one single-spot track."""
    i, f = np.nonzero(observed)
    order = np.random.default_rng(1).permutation(len(i))
    lines = list(TRACKMATE_HEADER)
    for spot, (a, b) in enumerate(zip(i[order], f[order])):
        position = f"{float(x[a, b, 0])!r},{float(x[a, b, 1])!r},0.0"
        time = f"{float(b * seconds_per_frame)!r}"
        lines.append(f"ID{spot},{spot},{a},{1 + a % 7:.3f},{position},{time},{b},0.5,1,,"
                     f"{100 + spot % 13}")  # fmt: skip
    for k in range(untracked):
        lines.append(f"ID9{k},9{k},{'' if k % 2 else 'None'},1.0,0.1,0.2,0.0,0.0,0,0.5,1,,1")
    lines.append("ID999,999,777,1.0,0.3,0.4,0.0,0.5,5,0.5,1,,1")  # a track of one spot
    path.write_text("\n".join(lines) + "\n")
    return path


def check_grid(data, x, observed, dt):
    """Every track on its own grid from its first frame: masks and states where they were."""
    for row in range(data.n_trajectories):
        seen = np.flatnonzero(observed[row])
        first, last = seen[0], seen[-1]
        np.testing.assert_array_equal(data.observed[row, : last - first + 1],
                                      observed[row, first : last + 1])  # fmt: skip
        assert not data.observed[row, last - first + 1 :].any()
        np.testing.assert_array_equal(data.x[row][data.observed[row]], x[row, seen])
        np.testing.assert_allclose(data.t[row, : last - first + 1],
                                   np.arange(first, last + 1) * dt, atol=1e-12)  # fmt: skip


def test_trackpy_table_with_index_column_gaps_masked(tmp_path, tracks):
    x, observed = tracks
    path = tmp_path / "tp.csv"
    trackpy_frame(x, observed).to_csv(path)  # the unnamed index column too
    assert path.read_text().startswith(",y,x,mass")
    table = read_tracks(path, frame_interval=DT)
    assert table.source == "trackpy"
    assert table.columns == {"id": "particle", "time": "frame", "coords": ("x", "y")}
    assert table.track_ids == tuple(str(i + 100) for i in range(N))
    check_grid(table.trajectories, x, observed, DT)
    seen = [np.flatnonzero(o) for o in observed]
    inner = [o[k[0] : k[-1] + 1] for o, k in zip(observed, seen)]
    missing = sum(int((~o).sum()) for o in inner)
    gaps = sum(int(np.sum(~o[1:] & o[:-1])) for o in inner)
    assert (table.n_missing, table.n_gaps) == (missing, gaps) and gaps > 5 * N
    assert f"{gaps} gaps ({missing} missing frames)" in table.summary
    assert "particle/frame/x/y" in table.summary and "dt = 0.01" in table.summary
    # a transition across a gap of k frames takes k·dt (never one step)
    _, _, h = table.trajectories.transitions()
    frames_apart = np.concatenate([np.diff(np.flatnonzero(o)) for o in observed])
    np.testing.assert_allclose(h, frames_apart * DT, rtol=1e-9)
    assert frames_apart.max() > 2
    # load_data recognises the columns and gives the same trajectories
    same = load_data(path, frame_interval=DT)
    np.testing.assert_array_equal(same.mask, table.trajectories.mask)
    # without the frame interval: times in frames, and the summary says so
    in_frames = read_tracks(path)
    assert in_frames.frame_interval == 1.0 and "no frame interval given" in in_frames.summary
    # frame as both index and column (what trackpy's link can leave): one column is used
    both = tmp_path / "tp_index.csv"
    trackpy_frame(x, observed).set_index("frame", drop=False).to_csv(both)
    np.testing.assert_array_equal(load_data(both, frame_interval=DT).x, same.x)


def test_trackmate_v7_table_times_from_position_t(tmp_path, tracks):
    x, observed = tracks
    path = write_trackmate(tmp_path / "spots.csv", x, observed, seconds_per_frame=DT)
    table = read_tracks(path)
    assert table.source == "TrackMate"
    assert table.columns["coords"] == ("POSITION_X", "POSITION_Y")  # constant Z left out
    assert table.frame_interval == pytest.approx(DT, rel=1e-9)
    check_grid(table.trajectories, x, observed, DT)
    assert (table.n_untracked, table.n_short) == (3, 1)
    summary = table.summary
    for words in ("dropped 1 tracks with fewer than 2", "dropped 3 spots in no track",
                  "skipped 3 description rows", "POSITION_Z is 0 in every row",
                  "TRACK_ID/FRAME/POSITION_X/POSITION_Y"):  # fmt: skip
        assert words in summary, summary
    # a given frame interval wins over POSITION_T, and the summary says they disagree
    other = read_tracks(path, frame_interval=0.02)
    assert other.frame_interval == 0.02 and "POSITION_T implies 0.01 per frame" in other.summary
    # tracks begin at different frames: the rollout accepts one common step
    assert Rollout()._check(table.trajectories)[0] == pytest.approx(DT)


def test_trackmate_position_t_must_follow_the_frames(tmp_path):
    rows = ["ID0,0,1,1,0.0,0.0,0,0.0,0", "ID1,1,1,1,0.1,0.0,0,0.1,1",
            "ID2,2,1,1,0.2,0.0,0,0.5,2"]  # fmt: skip
    head = "LABEL,ID,TRACK_ID,QUALITY,POSITION_X,POSITION_Y,POSITION_Z,POSITION_T,FRAME"
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([head, *rows]) + "\n")
    with pytest.raises(DataError, match="POSITION_T is not the frame times a constant"):
        read_tracks(path)
    given = read_tracks(path, frame_interval=0.1)  # the frames are used instead, with a note
    assert given.frame_interval == 0.1 and "does not follow the frames" in given.summary
    # two movies with different intervals in one table: each track keeps its own
    path.write_text("\n".join([head, *rows[:2], "ID2,2,2,1,0.0,0.0,0,1.0,5",
                               "ID3,3,2,1,0.0,0.1,0,1.4,7"]) + "\n")  # fmt: skip
    mixed = read_tracks(path)
    assert mixed.frame_interval is None and "frame intervals differ" in mixed.summary
    np.testing.assert_allclose(mixed.trajectories.t, [[0.0, 0.1, 0.2], [1.0, 1.2, 1.4]])
    assert mixed.trajectories.mask.tolist() == [[True, True, False], [True, False, True]]
    with pytest.raises(DataError, match="track table holds trajectories"):
        load_data(path, kind="snapshots")


def test_named_columns_tab_separated_and_errors(tmp_path):
    # a time column without a frame interval holds times: whole multiples of the smallest
    # step go on its grid (gap masked); irregular times are kept as given
    path = tmp_path / "cells.tsv"
    path.write_text("cell\tsec\tpx\tpy\tnote\n"
                    "a\t0.0\t1\t2\tok\na\t0.5\t2\t2\tok\na\t2.0\t3\t2\tblurred\n"
                    "b\t1.0\t5\t5\tok\nb\t1.5\t6\t5\tok\n")  # fmt: skip
    table = read_tracks(path, id_col="cell", time_col="sec", coords="px,py")
    assert table.source == "named" and table.frame_interval == 0.5
    np.testing.assert_array_equal(table.trajectories.mask, [[1, 1, 0, 0, 1], [1, 1, 0, 0, 0]])
    assert "1 gaps (2 missing frames)" in table.summary
    path.write_text("cell\tsec\tpx\na\t0.0\t1\na\t0.3\t2\na\t0.7\t4\n")
    table = read_tracks(path, id_col="cell", time_col="sec", coords="px")
    assert table.trajectories.mask is None and "kept as given" in table.summary
    np.testing.assert_allclose(table.trajectories.time_steps(), [0.3, 0.4])
    # iel's own columns with a frame interval: t holds frame numbers
    own = tmp_path / "own.csv"
    own.write_text("id,t,x0\n0,0,1.0\n0,1,2.0\n0,3,4.0\n")
    data = load_data(own, frame_interval=0.25)
    np.testing.assert_allclose(data.t[0], [0, 0.25, 0.5, 0.75])
    assert data.mask.tolist() == [[True, True, False, True]]
    assert load_data(own).mask is None  # without options: read exactly as before (packed)
    # a named column that is not there: the error lists the columns found
    with pytest.raises(DataError, match=r"'position'.*columns found: 'cell', 'sec', 'px'"):
        read_tracks(path, id_col="cell", time_col="sec", coords="position")
    with pytest.raises(DataError, match="expected trackpy columns .*columns found: 'cell'"):
        read_tracks(path)
    with pytest.raises(DataError, match="whole"):
        read_tracks(path, id_col="cell", time_col="sec", coords="px", frame_interval=0.1)


def test_cli_fit_recovers_the_double_well_from_a_trackpy_table(tmp_path, tracks):
    """Gaps read as single steps would inflate the increments and T̂ (most transitions
    here are next to a gap): T̂ and the force must match the truth."""
    x, observed = tracks
    path = tmp_path / "tracks.csv"
    trackpy_frame(x, observed).to_csv(path)
    runner = CliRunner()
    result = runner.invoke(app, ["fit", str(path), "--frame-interval", str(DT),
                                 "--energy", "poly:4", "--method", "onestep"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"read {N} tracks from trackpy columns" in result.output
    report = json.loads((tmp_path / "tracks.iel" / "report.json").read_text())
    model = iel.load(tmp_path / "tracks.iel")
    data = load_data(path, frame_interval=DT)
    _, _, h = data.transitions()
    rows = 2 * h.size
    # T̂ = Σ‖r‖²/(2·rows) has relative sd √(2/rows) (0.7 % here): 4 sd, plus 3 % for the
    # Euler scheme's bias at steps of 1–5 frames.  Gaps read as one step give T̂ ≈ 0.65.
    assert report["temperature"] == pytest.approx(TEMPERATURE, rel=4 * np.sqrt(2 / rows) + 0.03)
    # force over the observed states: a least-squares drift with p = 14 features (poly:4 in
    # 2-D) over observed time Σh has mean squared error ≈ 2T·p/Σh (about 0.2² here);
    # 1.6² times that is the 0.1 % tail of χ²₁₄/14.  Gaps read as one step: twice that.
    states = data.observed_states()
    truth = -4 * states * (states**2 - 1)
    rms = np.sqrt(np.mean(np.sum((np.asarray(model.force(states)) - truth) ** 2, axis=1)))
    expected = np.sqrt(2 * TEMPERATURE * 14 / np.sum(h))
    assert rms < 1.6 * expected, (rms, expected)
    # a missing named column ends in one error line naming the columns found
    bad = runner.invoke(app, ["fit", str(path), "--coords", "x,w", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2
    assert "'w'" in bad.output and "columns found:" in bad.output and "'particle'" in bad.output
