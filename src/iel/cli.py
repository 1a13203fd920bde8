"""The ``iel`` command line: a thin layer over the public API."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Inverse energy learning: find the energy a system is minimising, from its data.",
)
console = Console()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


# arithmetic that went beyond double precision (huge values, singular systems)
NUMERICAL_HINT = (
    "the numbers went beyond double precision; check the data's magnitudes and spread and "
    "rescale them (e.g. to values of order 1)"
)


def _fail(message: str) -> None:
    console.print("[red]error:[/red] " + escape(message))  # file names and keys as written
    raise typer.Exit(code=2)


def _numerical_errors() -> tuple[type[BaseException], ...]:
    import numpy as np

    return (ArithmeticError, np.linalg.LinAlgError)


def _message(err: BaseException) -> str:
    """The one line a user reads for ``err``: numerical failures name their kind and say what
    to do."""
    if isinstance(err, _numerical_errors()):
        return f"numerical failure ({type(err).__name__}: {err}): {NUMERICAL_HINT}"
    return str(err)


def _clear_errors(command):
    """A command whose numerical failures (overflow, division by zero, a linear-algebra
    routine that does not converge), missing optional dependencies and files that cannot be
    written end in one ``error:`` line and exit status 2, never a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except _numerical_errors() as err:
            _fail(_message(err))
        except (ImportError, OSError) as err:  # a missing optional dependency (anndata for
            _fail(str(err))  # .h5ad); a file that cannot be written (a file where a folder goes)

    return run


@app.command()
@_clear_errors
def systems() -> None:
    """List the built-in reference systems."""
    from .systems import SYSTEMS, get_system

    table = Table("name", "d", "description")
    for name in SYSTEMS:
        s = get_system(name)
        table.add_row(name, str(s.dim), s.description)
    console.print(table)


@app.command()
@_clear_errors
def simulate(
    system: str = typer.Argument(..., help="reference system (see `iel systems`)"),
    out: Path = typer.Option(..., "--out", "-o", help="output file (.npz or .csv)"),
    n: int = typer.Option(200, "--n", help="number of trajectories / particles"),
    steps: int = typer.Option(500, "--steps", help="number of steps"),
    dt: float = typer.Option(0.01, "--dt", help="time step (η for gradient descent)"),
    temperature: float = typer.Option(0.0, "--temperature", "-T", help="0: gradient descent"),
    snapshots: bool = typer.Option(False, "--snapshots", help="drop identities: write snapshots"),
    endpoints: bool = typer.Option(
        False, "--endpoints", help="keep only end states; their starts go to <out>_starts.npz"
    ),
    save_every: int = typer.Option(1, "--save-every", help="record every k-th state"),
    dim: int | None = typer.Option(None, "--dim", help="dimension (scalable systems)"),
    seed: int = typer.Option(0, "--seed"),
    interaction: bool = typer.Option(
        False,
        "--interaction",
        help="the system's energy as the pair energy W of one system of all --n particles "
        "(JKOnet*'s interaction benchmark; trajectories or --snapshots)",
    ),
) -> None:
    """Simulate a reference system and write a data file."""
    from .data import save_data
    from .data.files import atomic_file
    from .dynamics import SimulationDivergedError
    from .systems import simulate_system

    try:
        with _progress() as bar:
            task = bar.add_task(f"simulating {system}", total=steps)
            data = simulate_system(
                system,
                n=n,
                steps=steps,
                dt=dt,
                temperature=temperature,
                snapshots=snapshots,
                endpoints=endpoints,
                save_every=save_every,
                dim=dim,
                seed=seed,
                progress=lambda done, total: bar.update(task, completed=done),
                interaction=interaction,
            )
        if endpoints:
            import numpy as np

            from .data.populations import Endpoints

            starts_path = out.with_name(f"{out.stem}_starts.npz")
            if starts_path.exists():
                raise FileExistsError(f"{starts_path} exists; remove it or choose another --out")
            with atomic_file(starts_path) as partial:
                np.savez(partial, starts=data.starts)
                path = save_data(out, Endpoints(data.x))  # both files or neither
            console.print(f"wrote the starts to [bold]{starts_path}[/bold]")
        else:
            path = save_data(out, data)
    except SimulationDivergedError as err:
        _fail(f"{err.summary} Nothing was written: rerun with a smaller --dt.")
    except (ValueError, FileExistsError, RuntimeError) as err:
        _fail(_message(err))
    console.print(f"wrote {data!r} to [bold]{path}[/bold]")


@app.command()
@_clear_errors
def fit(
    data: Path = typer.Argument(
        ..., help="data file (.npz, .csv, .h5ad; .tsv/.txt tracks; .npy/.zarr trajectories)"
    ),
    energy: str = typer.Option(
        "auto", "--energy", "-e", help="energy family spec, or auto (shortest description)"
    ),
    dt: float | None = typer.Option(
        None, "--dt", help=".npy/.npz/.zarr trajectories (N, T, d): the time step between states"
    ),
    stream: bool | None = typer.Option(
        None,
        "--stream/--no-stream",
        help=".npy/.npz/.zarr trajectories: read in chunks (one closed-form pass, bounded "
        "memory); default: when the states take over 2 GiB as float64",
    ),
    kind: str | None = typer.Option(
        None, "--kind", help="force the data kind: trajectories|snapshots|samples|endpoints"
    ),
    id_col: str | None = typer.Option(
        None, "--id-col", help="track tables: the column naming each row's track"
    ),
    time_col: str | None = typer.Option(
        None, "--time-col", help="track tables: frame numbers (with --frame-interval) or times"
    ),
    coords: str | None = typer.Option(
        None, "--coords", help="track tables: coordinate columns, comma-separated (x,y)"
    ),
    frame_interval: float | None = typer.Option(
        None, "--frame-interval", help="track tables: time per frame (e.g. seconds)"
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="output dir (<stem>.iel/)"),
    method: str = typer.Option("auto", "--method", "-m", help="auto | onestep | rollout"),
    dynamics: str = typer.Option(
        "auto",
        "--dynamics",
        help="trajectories: auto (noise-free → gd, else langevin) | gd | langevin | "
        "exponentiated (proportions on the simplex, the multiplicative update)",
    ),
    ridge: float = typer.Option(0.0, "--ridge", help="ridge weight (scaled coefficients)"),
    steps: int = typer.Option(3000, "--steps", help="optimiser steps (iterative fits)"),
    temperature: float | None = typer.Option(
        None, "--temperature", "-T", help="fix the temperature instead of estimating it"
    ),
    projection: Path | None = typer.Option(
        None, "--projection", help=".npy/.txt observation matrix P (y = P x): implies rollout"
    ),
    hidden_starts: bool = typer.Option(
        False, "--hidden-starts", help="learn segment starts (noisy or missing first states)"
    ),
    horizon: int | None = typer.Option(None, "--horizon", help="rollout segment length"),
    substeps: int | None = typer.Option(None, "--substeps", help="model steps per interval"),
    coupling: str | None = typer.Option(
        None, "--coupling", help="snapshots: auto | exact | sinkhorn | minibatch"
    ),
    pairing: str | None = typer.Option(
        None,
        "--pairing",
        help="snapshots: auto | transport | registration (the step itself, by coherent point "
        "drift: follows steps that fold; up to 3 coordinates)",
    ),
    interaction: str | None = typer.Option(
        None,
        "--interaction",
        help="snapshots: pair interaction W, a degree K (even monomials "
        "2…K) or an energy spec such as rbf:10 or mlp:16",
    ),
    resampled: bool = typer.Option(
        False,
        "--resampled",
        help="snapshots: each time is a fresh sample (cells destroyed "
        "when measured): fit E and T by the JKO condition with its entropy term "
        "(the same as --regime fresh)",
    ),
    regime: str | None = typer.Option(
        None,
        "--regime",
        help="snapshots: auto (decide from the data) | same (the same particles at each time) "
        "| fresh (each time a fresh sample); overrides a hint the data file carries",
    ),
    growth: str | None = typer.Option(
        None,
        "--growth",
        help="snapshots: births and deaths between times, none | given (the file's "
        "growth_rate) | auto (given rates, else unbalanced transport); default: given when "
        "the file has growth_rate, else none",
    ),
    reg_m: float | None = typer.Option(
        None, "--reg-m", help="snapshots, --growth auto: unbalanced transport's KL weight"
    ),
    objective: str | None = typer.Option(
        None, "--objective", help="end states: latent (default) | likelihood | pushforward"
    ),
    prior: str | None = typer.Option(
        None, "--prior", help="end states: prior on starts, normal | normal:M:S | uniform:A:B"
    ),
    starts: Path | None = typer.Option(
        None, "--starts", help="end states: observed starts, one per end state (.npz/.npy/.csv)"
    ),
    descent_steps: int | None = typer.Option(
        None, "--descent-steps", help="end states: descent steps K of the model's process"
    ),
    diffusion: str = typer.Option(
        "constant",
        "--diffusion",
        help="trajectories: constant (one temperature) | scalar | diagonal | full (a "
        "state-dependent D(x), polynomial; :K sets its degree, default 2) | auto (scalar D(x) "
        "when the constant-temperature test rejects one temperature)",
    ),
    drift_form: str = typer.Option(
        "mobility",
        "--drift-form",
        help="with --diffusion: mobility (dx = [−D∇E + ∇·D] dt + √(2D) dW, stationary law "
        "exp(−E)) | ito (dx = −∇E dt + √(2D) dW)",
    ),
    seed: int = typer.Option(0, "--seed"),
    bootstrap: int = typer.Option(
        0,
        "--bootstrap",
        min=0,
        help="B resamples (trajectories / particles, seeded by --seed): percentile intervals "
        "on coefficients, T and E(x) in report.json's uncertainty",
    ),
    force: bool = typer.Option(False, "--force", help="replace a model already in --out"),
    checkpoint_every: int = typer.Option(
        0,
        "--checkpoint-every",
        help="iterative fits: save the optimiser's state every N "
        "steps (and on Ctrl-C) in <out>/checkpoint/ (JSON + .npz)",
        min=0,
    ),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        help="continue an interrupted fit from its checkpoint (an earlier "
        "--out, or its checkpoint/ folder); same data and settings",
    ),
    time_key: str | None = typer.Option(
        None, "--time-key", help=".h5ad: the obs column of the cells' times (detected if absent)"
    ),
    basis: str | None = typer.Option(
        None, "--basis", help=".h5ad: the obsm embedding fitted (default X_pca; X: genes, dense)"
    ),
    n_components: int | None = typer.Option(
        None, "--n-components", help=".h5ad: fit the first K columns of the basis", min=1
    ),
    write_back: bool = typer.Option(
        False,
        "--write-back",
        help=".h5ad: write the cells with iel_potential, velocity_<basis> and uns['iel'] "
        "to <out>/<input stem>.h5ad, and embedding.png",
    ),
    overwrite_input: bool = typer.Option(
        False, "--overwrite-input", help="with --write-back: write the results into the input file"
    ),
    devices: str = typer.Option(
        "all", "--devices", help="devices a fit splits its data over: all (local) | N"
    ),
    coordinator: str | None = typer.Option(
        None, "--coordinator", help="several processes: process 0's host:port (see the guide)"
    ),
    num_processes: int | None = typer.Option(
        None, "--num-processes", help="several processes: how many", min=1
    ),
    process_id: int | None = typer.Option(
        None, "--process-id", help="several processes: this one's index 0…P−1", min=0
    ),
    distributed: bool = typer.Option(
        False, "--distributed", help="several processes, found by JAX (Slurm srun, Open MPI)"
    ),
) -> None:
    """Fit an energy to a data file and write report.json, the model and landscape.png.

    With several processes (--coordinator/--num-processes/--process-id, the
    JAX_COORDINATOR_ADDRESS/JAX_NUM_PROCESSES/JAX_PROCESS_ID variables, or --distributed)
    each reads its share of the trajectories, the closed-form statistics are added across
    them and process 0 writes the model.

    A .h5ad file (AnnData) is read as snapshots of cells (iel.fit_anndata's defaults: each
    snapshot a fresh sample); --write-back adds the results to a copy of it.

    End states (``--kind endpoints``) also get starts.npz: a start for every end state.
    Ctrl-C during an iterative fit stops it with the best parameters so far and writes the
    model (stop_reason "interrupted at step k …")."""
    import numpy as np

    from .parallel import initialize

    try:  # before anything runs on a device
        several = initialize(coordinator, num_processes, process_id, auto=distributed)
    except ValueError as err:
        _fail(str(err))
    import jax

    from .auto import fit as fit_energy
    from .data.files import staged_directory
    from .data.populations import Endpoints
    from .distributed import fit_across_processes, process_share
    from .model import MODEL_FILES
    from .parallel import describe_devices, parse_devices, use_devices
    from .training import Checkpointer
    from .transport.couplings import CouplingError

    out = out or data.with_suffix(".iel")
    if resume is not None and resume.resolve() in (out.resolve(), (out / "checkpoint").resolve()):
        force = True  # resuming in place replaces the interrupted fit's model
    if out.exists() and not out.is_dir():
        _fail(f"{out} is a file; --out names the folder for the model, choose another")
    if (out / "model.json").exists() and not force:
        _fail(f"{out} already holds a model; pass --force to replace it or choose --out")
    options = {k: v for k, v in (("horizon", horizon), ("substeps", substeps)) if v}
    if coupling:
        options["coupling"] = coupling
    if pairing:
        options["pairing"] = pairing
    if interaction:
        options["interaction"] = int(interaction) if interaction.isdigit() else interaction
    if resampled:
        options["resampled"] = True
    if regime:
        options["regime"] = regime
    for name, value in (("growth", growth), ("reg_m", reg_m)):
        if value is not None:
            options[name] = value
    if diffusion != "constant" or drift_form != "mobility":
        options.update(diffusion=diffusion, drift_form=drift_form)
    for name, value in (("objective", objective), ("prior", prior),
                        ("descent_steps", descent_steps)):  # fmt: skip
        if value is not None:
            options[name] = value
    try:
        matrix = None
        if projection is not None:
            matrix = np.load(projection) if projection.suffix == ".npy" else np.loadtxt(projection)
            matrix = np.atleast_2d(matrix)
        single_cell = _single_cell_read(data, kind, time_key, basis, n_components, write_back,
                                        overwrite_input, method, energy, options)  # fmt: skip
        if single_cell:
            loaded, energy = single_cell[0], single_cell[2].pop("energy", energy)
            options = single_cell[2]
        else:
            loaded = _open_trajectories(data, kind, dt, stream)
            if loaded is None:
                loaded = _load(data, kind, id_col, time_col, coords, frame_interval)
        if starts is not None:
            loaded = _with_starts(loaded, starts)
        elif options.keys() & {"objective", "prior", "descent_steps"} and not isinstance(
            loaded, Endpoints
        ):
            _fail(f"--objective, --prior and --descent-steps are for end states; {data} holds "
                  f"{loaded.kind} (pass --kind endpoints to read it as end states)")  # fmt: skip
        console.print(f"data: {loaded!r}")
        chosen = parse_devices(devices)
        if len(chosen) > 1:
            console.print(f"devices: {describe_devices(chosen)} (the data split over them)")
        if several:
            if not hasattr(loaded, "observed_states"):  # a TrajectoryStore
                _fail("a multi-process fit shares trajectories read into memory; streamed "
                      "files (--stream, or over 2 GiB) are fitted by one process")  # fmt: skip
            loaded = process_share(loaded)
            console.print(f"process {jax.process_index()} of {jax.process_count()}: "
                          f"{loaded.n_trajectories} trajectories of the data")  # fmt: skip
            extras = options or bootstrap or dynamics != "auto"
            if energy == "auto" or method not in ("auto", "onestep") or extras:
                _fail("a multi-process fit is the closed-form one-step fit: give --energy "
                      "(poly:K, fourier:K, quadratic) and no other fitting options")  # fmt: skip
        checkpoint = None
        if checkpoint_every or resume is not None:
            checkpoint = Checkpointer(out / "checkpoint" if checkpoint_every else None,
                                      checkpoint_every, resume)  # fmt: skip
        with _progress() as bar, use_devices(chosen):
            task = bar.add_task(f"fitting {energy}", total=steps)
            if several:
                model = fit_across_processes(loaded, energy, ridge=ridge, seed=seed,
                                             temperature=temperature)  # fmt: skip
            else:
                model = fit_energy(
                    loaded,
                    energy,
                    method=method,
                    ridge=ridge,
                    seed=seed,
                    steps=steps,
                    temperature=temperature,
                    projection=matrix,
                    hidden_starts=hidden_starts,
                    progress=lambda s, total, loss: bar.update(task, completed=s),
                    checkpoint=checkpoint,
                    bootstrap=bootstrap,
                    dynamics=dynamics,
                    **options,
                )
        if several and jax.process_index() != 0:
            _print_model(model)
            console.print(f"process {jax.process_index()}: the model is written by process 0")
            return
        if "streamed" in model.diagnostics:
            console.print(_streamed_line(model.diagnostics["streamed"]))
            loaded = _plotted_sample(loaded, seed)
        outputs = FIT_OUTPUTS + (_written_back(data, write_back, overwrite_input))
        with staged_directory(out, replaces=MODEL_FILES + outputs, overwrite=force) as stage:
            model.write_files(stage)  # the fit is saved: nothing after this may fail it
            skipped = write_fit_outputs(model, loaded, stage)
            if single_cell:
                skipped += write_back_outputs(model, single_cell[1], data, stage, write_back,
                                              overwrite_input)  # fmt: skip
            written = sorted(p.name for p in stage.iterdir())
    except (ValueError, TypeError, NotImplementedError, FileExistsError, OSError,
            CouplingError) as err:  # fmt: skip
        _fail(_message(err))
    _print_model(model)
    for note in skipped:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    console.print(f"wrote [bold]{escape(str(out))}/[/bold] ({', '.join(written)})")


# what `iel fit` writes beside the model files (a folder's earlier copies are replaced)
FIT_OUTPUTS = ("landscape.png", "starts.npz")
EMBEDDING_PNG = "embedding.png"


def _single_cell_read(data: Path, kind, time_key, basis, n_components, write_back,
                      overwrite_input, method, energy, options):  # fmt: skip
    """For a .h5ad file: ``(cells, what was read, options with the single-cell defaults)``,
    the mapping printed; ``None`` for other files (whose single-cell options are refused)."""
    given = [flag for flag, value in (("--time-key", time_key), ("--basis", basis),
             ("--n-components", n_components), ("--write-back", write_back),
             ("--overwrite-input", overwrite_input)) if value]  # fmt: skip
    if data.suffix.lower() != ".h5ad":
        if given:
            _fail(f"{', '.join(given)} apply to .h5ad (AnnData) files; {data} is not one")
        return None
    if overwrite_input and not write_back:
        _fail("--overwrite-input says where --write-back writes; pass both (or neither)")
    from .data.anndata_io import read_anndata
    from .single_cell import single_cell_options

    cells, record = read_anndata(data, time_key, basis, n_components, kind=kind or "snapshots")
    for line in record.describe():
        console.print(escape(line))
    chosen, defaults = single_cell_options(cells.dim, {**options, "method": method,
                                                       "energy": energy})  # fmt: skip
    chosen.pop("method")
    for line in defaults:
        console.print(f"single-cell default: {escape(line)}")
    return cells, record, chosen


def _written_back(data: Path, write_back: bool, overwrite_input: bool) -> tuple[str, ...]:
    """The names --write-back adds to the model folder."""
    if not write_back:
        return ()
    return (EMBEDDING_PNG,) if overwrite_input else (f"{data.stem}.h5ad", EMBEDDING_PNG)


def write_back_outputs(model, record, data: Path, folder: Path, write_back: bool,
                       overwrite_input: bool) -> list:  # fmt: skip
    """What was read of a .h5ad file goes into ``report.json`` (``single_cell``); with
    ``write_back`` also the input cells with the results
    (:func:`iel.single_cell.write_results`) as ``folder/<stem>.h5ad`` (or into ``data`` itself
    with ``overwrite_input``, replaced whole or not at all) and ``embedding.png``.  Like
    :func:`write_fit_outputs`, a failure is a note (returned, and added to ``report.json``),
    never a failed fit."""
    from .model import REPORT_JSON

    outputs, notes = {}, []
    if write_back:
        target = data if overwrite_input else folder / f"{data.stem}.h5ad"
        steps = {str(target) if overwrite_input else target.name: None, EMBEDDING_PNG: None}
        adata = None
        for name in steps:
            try:
                if name == EMBEDDING_PNG:
                    if adata is None:
                        raise RuntimeError("the cells with the results were not written")
                    _embedding_figure(adata, record, folder / EMBEDDING_PNG)
                else:
                    adata = _write_cells(model, record, data, target)
                    if overwrite_input:  # (a copy in the folder is listed with the folder)
                        console.print(f"wrote the results into [bold]{escape(str(data))}[/bold]")
                outputs[name] = "written"
            except Exception as err:  # noqa: BLE001 - the saved fit stands whatever happens
                if name == EMBEDDING_PNG:
                    (folder / EMBEDDING_PNG).unlink(missing_ok=True)
                reason = f"{type(err).__name__}: {err}".strip()
                outputs[name] = f"skipped ({reason})"
                notes.append(f"{name} was not written: {reason}; the fitted model is saved")
    report_path = folder / REPORT_JSON
    report = json.loads(report_path.read_text())
    report.setdefault("outputs", {}).update(outputs)
    report["single_cell"] = record.as_dict()
    if notes:
        diagnostics = report.setdefault("diagnostics", {})
        diagnostics["notes"] = [*diagnostics.get("notes", []), *notes]
    report_path.write_text(json.dumps(report, indent=2))
    return notes


def _write_cells(model, record, data: Path, target: Path):
    """The cells of ``data`` with the results, written to ``target`` in one rename."""
    from .data.anndata_io import open_h5ad
    from .data.files import atomic_file
    from .single_cell import write_results

    adata = open_h5ad(data)
    write_results(adata, model, record)
    with atomic_file(target) as partial:
        adata.write_h5ad(partial)
    return adata


def _embedding_figure(adata, record, path: Path) -> None:
    """``embedding.png``: the potential and drift in X_umap (else in the fitted basis)."""
    from .plotting import plot_embedding_landscape, plt
    from .single_cell import UMAP_KEY

    ax = plot_embedding_landscape(adata, basis=UMAP_KEY if UMAP_KEY in adata.obsm else record.basis)
    ax.figure.savefig(path, dpi=110)
    plt.close(ax.figure)


def write_fit_outputs(model, data, folder: Path) -> list[str]:
    """Write the outputs that follow a saved model into ``folder`` (which holds its files):
    ``landscape.png`` and, for end states, ``starts.npz``.

    A fitted model is a result whatever happens next: an output that cannot be made (a plot
    of an energy that is nowhere finite, a full disk) is skipped, and the reason is returned
    and written into ``folder/report.json`` (under ``outputs`` and as a note); nothing is
    raised.  Returns the notes of the skipped outputs."""
    import numpy as np

    from .model import REPORT_JSON
    from .plotting import save_landscape

    steps = {"landscape.png": lambda path: save_landscape(model, data, path)}
    if model.starts is not None:
        steps["starts.npz"] = lambda path: np.savez(path, starts=model.starts, x=data.x)
    outputs, notes = {}, []
    for name, step in steps.items():
        try:
            step(folder / name)
            outputs[name] = "written"
        except Exception as err:  # noqa: BLE001 - any failure here leaves the fit standing
            (folder / name).unlink(missing_ok=True)
            reason = f"{type(err).__name__}: {err}".strip()
            outputs[name] = f"skipped ({reason})"
            notes.append(f"{name} was not written: {reason}; the fitted model is saved")
    report_path = folder / REPORT_JSON
    report = json.loads(report_path.read_text())
    report["outputs"] = outputs
    if notes:
        diagnostics = report.setdefault("diagnostics", {})
        diagnostics["notes"] = [*diagnostics.get("notes", []), *notes]
    report_path.write_text(json.dumps(report, indent=2))
    return notes


def _open_trajectories(path: Path, kind, dt, stream):
    """Trajectories of a ``.npy``/``.npz``/``.zarr`` file as a chunked store when ``stream``
    (or, when ``stream`` is ``None``, when they are large); read into memory otherwise.
    ``None`` for other files and data, which :func:`_load` reads."""
    from .data import DataError, open_trajectories
    from .data.store import STREAM_ABOVE_BYTES, STREAM_SUFFIXES

    suffix = path.suffix.lower()
    streamable = suffix in STREAM_SUFFIXES and kind in (None, "trajectories")
    if not streamable:
        if stream or dt is not None:
            given = f" with --kind {kind}" if kind else ""
            raise DataError(f"--stream and --dt read trajectories from .npy, .npz or .zarr "
                            f"files; got {path.name!r}{given}")  # fmt: skip
        return None
    if suffix == ".npz" and not stream and dt is None:
        try:  # a snapshot or compressed .npz is read by load_data
            store = open_trajectories(path)
        except DataError:
            return None
    else:
        store = open_trajectories(path, dt=dt)
    if stream or (stream is None and store.nbytes > STREAM_ABOVE_BYTES):
        reason = "--stream" if stream else f"over {STREAM_ABOVE_BYTES / 2**30:.3g} GiB as float64"
        console.print(f"streaming the trajectories ({reason})")
        return store
    return store.to_trajectories()


def _streamed_line(summary: dict) -> str:
    """What a streamed fit read, and the process's peak resident memory: ``VmHWM`` of
    ``/proc/self/status`` on Linux, ``getrusage``'s ``ru_maxrss`` elsewhere."""
    import resource
    import sys

    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    hwm = [int(line.split()[1]) for line in lines if line.startswith("VmHWM:")]
    peak = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mib = peak / 2**20 if sys.platform == "darwin" and not hwm else peak / 2**10
    spaced = lambda n: f"{n:,}".replace(",", " ")  # noqa: E731
    return (f"read {spaced(summary['n_transitions'])} transitions in "
            f"{spaced(summary['n_chunks'])} chunks of ≤ {spaced(summary['chunk_transitions'])} in "
            f"{summary['seconds']:.3g} s; largest chunk "
            f"{summary['largest_chunk_bytes'] / 2**20:.3g} MiB; peak resident memory of this "
            f"process {peak_mib:.0f} MiB")  # fmt: skip


def _plotted_sample(store, seed: int):
    """A bounded sample of a store's states (as samples) for the landscape figure."""
    from .data import Samples

    return Samples(store.sample_states(20_000, seed=seed))


def _load(path: Path, kind, id_col, time_col, coords, frame_interval):
    """Read a data file; a track table's reader says what it read."""
    from .data import load_data_and_summary

    loaded, summary = load_data_and_summary(
        path, kind, id_col=id_col, time_col=time_col, coords=coords, frame_interval=frame_interval
    )
    if summary:
        console.print(escape(summary))
    return loaded


def _with_starts(loaded, path: Path):
    """End states with the observed starts read from ``path`` attached."""
    import numpy as np

    from .data import DataError
    from .data.populations import Endpoints

    if not isinstance(loaded, Endpoints):
        raise DataError(f"--starts goes with end states; the data file holds {loaded.kind} "
                        "(pass --kind endpoints)")  # fmt: skip
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            key = next((k for k in ("starts", "z") if k in f.files), None)
            if key is None:
                raise DataError(f"{path}: expected an array named 'starts' (or 'z'), found "
                                f"{', '.join(f.files) or 'nothing'}")  # fmt: skip
            values = f[key]
    elif path.suffix == ".npy":
        values = np.load(path, allow_pickle=False)
    else:  # .csv, with or without a header row (x0, x1, …)
        with open(path) as f:
            first = f.readline().split(",")
        try:
            [float(v) for v in first]
            header = 0
        except ValueError:
            header = 1
        values = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=header)
    return Endpoints(loaded.x, starts=values)


@app.command()
@_clear_errors
def select(
    data: Path = typer.Argument(..., help="trajectory data file (.npz, .csv)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="output dir (<stem>.iel/)"),
    families: str | None = typer.Option(
        None, "--families", help="comma-separated energy specs to rank (default: a standard set)"
    ),
    epsilon: float | None = typer.Option(None, "--epsilon", help="data precision for the codes"),
    networks: str = typer.Option(
        "mlp:16,mlp:32x32", "--networks", help="comma-separated network families ('' for none)"
    ),
    kind: str | None = typer.Option(None, "--kind", help="force the data kind"),
    id_col: str | None = typer.Option(
        None, "--id-col", help="track tables: the column naming each row's track"
    ),
    time_col: str | None = typer.Option(
        None, "--time-col", help="track tables: frame numbers (with --frame-interval) or times"
    ),
    coords: str | None = typer.Option(
        None, "--coords", help="track tables: coordinate columns, comma-separated (x,y)"
    ),
    frame_interval: float | None = typer.Option(
        None, "--frame-interval", help="track tables: time per frame (e.g. seconds)"
    ),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Rank energy families by description length; is this a gradient system at all?"""
    from .data.populations import Endpoints
    from .selection import SELECT_FAMILIES
    from .selection import select as run_select

    out = out or data.with_suffix(".iel")
    try:
        loaded = _load(data, kind, id_col, time_col, coords, frame_interval)
        chosen_families = tuple(f.strip() for f in families.split(",")) if families else None
        if isinstance(loaded, Endpoints):
            _select_end_states(loaded, chosen_families, out, seed)
            return
        with console.status("coding the candidates"):
            nets = tuple(n.strip() for n in networks.split(",") if n.strip())
            result = run_select(
                loaded, chosen_families or SELECT_FAMILIES, epsilon=epsilon, seed=seed,
                networks=nets,
            )  # fmt: skip
    except (ValueError, TypeError, NotImplementedError) as err:
        _fail(_message(err))
    table = Table("rank", "candidate", "bits (two-part)", "prequential", "params", "formula")
    best = result.chosen.code.total
    for i, cand in enumerate(result.ranking(), 1):
        preq = "" if cand.prequential_bits is None else f"{cand.prequential_bits - best:+.1f}"
        formula = cand.formula if len(cand.formula) < 60 else cand.formula[:57] + "…"
        table.add_row(
            str(i), cand.name, f"{cand.code.total - best:+.1f}", preq, str(cand.n_parameters),
            formula,
        )  # fmt: skip
    console.print(table)
    console.print("bits relative to the chosen model; prequential relative to its two-part code")
    console.print(f"chosen: [bold]{result.chosen.name}[/bold]: {result.model.formula}")
    if result.best_drift is None:
        console.print(f"gradient system: {result.model.diagnostics['gradient_system_note']}")
    else:
        verdict = "yes" if result.gradient_system else "no"
        margin = result.best_drift.code.total - result.chosen.code.total
        console.print(f"gradient system: [bold]{verdict}[/bold] (energy vs general drift: "
                      f"{margin:+.1f} bits)")  # fmt: skip
    console.print(f"dynamics: {result.dynamics}")
    _write_json(out / "select.json", result.as_dict())


def _select_end_states(data, families, out: Path, seed: int) -> None:
    from .selection import END_STATE_FAMILIES, select_end_states

    with console.status("fitting and coding the candidates"):
        result = select_end_states(data, families or END_STATE_FAMILIES, seed=seed)
    table = Table("rank", "candidate", "bits (two-part)", "params", "minima", "formula")
    best = result.chosen.bits
    for i, cand in enumerate(result.ranking(), 1):
        formula = cand.formula if len(cand.formula) < 60 else cand.formula[:57] + "…"
        table.add_row(str(i), cand.name, f"{cand.bits - best:+.1f}", str(cand.n_parameters),
                      str(cand.n_minima), formula)  # fmt: skip
    console.print(table)
    console.print("bits relative to the chosen model")
    console.print(f"chosen: [bold]{result.chosen.name}[/bold]: {result.model.formula}")
    explains = "yes" if result.chosen.bits < result.null.bits else "no"
    saved = result.null.bits - result.chosen.bits
    console.print(f"an energy explains the end states: [bold]{explains}[/bold] "
                  f"({saved:+.1f} bits against E ≡ const)")  # fmt: skip
    _write_json(out / "select.json", result.as_dict())


def _write_json(path: Path, value, say: bool = True) -> None:
    """Write ``value`` as JSON to ``path`` in one rename (never half-written)."""
    from .data.files import atomic_file

    text = json.dumps(value, indent=2, default=float)
    with atomic_file(path) as partial:
        partial.write_text(text)
    if say:
        console.print(f"wrote [bold]{escape(str(path))}[/bold]")


def _shown(value) -> list[str]:
    """A diagnostic as table rows: numbers and text as they are, a list of lines one row
    each; structured records (tables, per-lag lists) only in report.json."""
    if isinstance(value, float):
        return [f"{value:.6g}"]
    if value is None or isinstance(value, (str, int, bool)):
        return [str(value)]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return []


def _print_model(model) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("formula", model.formula)
    table.add_row("temperature", f"{model.temperature:.6g}")
    table.add_row("parameters", str(model.n_parameters))
    table.add_row("method", model.method)
    if "method_reason" in model.diagnostics:
        table.add_row("why", model.diagnostics["method_reason"])
    for key, value in model.diagnostics.items():
        if key not in ("notes", "method_reason"):
            for text in _shown(value):
                table.add_row(key.removesuffix("_summary"), text)
    for note in model.diagnostics.get("notes", []):
        table.add_row("note", note)
    table.add_row("identifiable", model.identifiability["energy"])
    table.add_row("stopped", model.stop_reason)
    table.add_row("time", f"{model.fit_seconds:.2f} s")
    console.print(table)
    _print_uncertainty(model.uncertainty)


SHOWN_COEFFICIENTS = 20  # larger families: the intervals are in report.json only


def _print_uncertainty(uncertainty) -> None:
    """Coefficients ± standard error and their 95 % intervals, for families small enough."""
    rows = (uncertainty or {}).get("coefficients", [])
    if not rows or len(rows) > SHOWN_COEFFICIENTS:
        return
    level = 100 * uncertainty.get("level", 0.95)
    table = Table(title=f"coefficients ({level:.0f} % intervals)", title_justify="left")
    for column in ("term", "value", "± stderr", "low", "high"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["term"], *(f"{row[k]:.4g}" for k in ("value", "stderr", "low", "high")))
    temp = uncertainty["temperature"]
    table.add_row("T", f"{temp['value']:.4g}", "", f"{temp['low']:.4g}", f"{temp['high']:.4g}")
    console.print(table)
    for note in uncertainty.get("notes", []):
        console.print(f"[yellow]uncertainty:[/yellow] {escape(note)}")


@app.command()
@_clear_errors
def demo(
    out: Path = typer.Option(Path("iel-demo"), "--out", "-o", help="folder for the figures"),
) -> None:
    """Simulate Langevin data on two known landscapes, learn them back, compare with truth."""
    from .demo import run_demo

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with _progress() as bar:
        results = run_demo(out, lambda name, done, total: _bar(bar, name, done, total))
    for result in results:
        table = Table(title=result["title"], title_justify="left")
        table.add_column("")
        table.add_column("true")
        table.add_column("recovered")
        for row in result["rows"]:
            table.add_row(*row)
        console.print(table)
    summary = {r["name"]: r["summary"] for r in results}
    _write_json(out / "demo.json", summary, say=False)
    console.print(
        f"figures and demo.json in [bold]{out}/[/bold]; total {time.perf_counter() - start:.1f} s"
    )


@app.command()
@_clear_errors
def cache(
    clear: bool = typer.Option(False, "--clear", help="delete the cached compiled programs"),
) -> None:
    """Where compiled programs are kept between runs and how much they take (--clear: empty it).

    Each command loads the programs an earlier run compiled for data of the same shapes
    instead of compiling them again.  The folder: $IEL_CACHE_DIR, else the user cache folder;
    IEL_COMPILATION_CACHE=0 switches the cache off."""
    import jax

    from .compilation_cache import (
        cache_is_on,
        clear_compilation_cache,
        compilation_cache_contents,
        default_cache_dir,
    )

    # the folder main() switched on (JAX's own option, when the user set one), else ours
    folder = Path(jax.config.jax_compilation_cache_dir or default_cache_dir())
    state = "on" if cache_is_on() else "off (IEL_COMPILATION_CACHE)"
    if clear:
        removed = clear_compilation_cache(folder)
        console.print(f"removed {removed} compiled programs from {folder}")
        return
    programs, size = compilation_cache_contents(folder)
    console.print(f"compilation cache {state}: {folder} — {programs} programs, "
                  f"{size / 2**20:.1f} MiB")  # fmt: skip


_TASKS: dict[str, int] = {}


def _bar(bar: Progress, name: str, done: int, total: int) -> None:
    if name not in _TASKS:
        _TASKS[name] = bar.add_task(name, total=total)
    bar.update(_TASKS[name], completed=done)


def main() -> None:
    from .compilation_cache import enable_compilation_cache

    enable_compilation_cache()  # a second run loads its compiled programs instead of compiling
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
