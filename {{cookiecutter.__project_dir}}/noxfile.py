"""Test tiers and checks. ``nox -l`` lists them; plain ``nox`` runs the fast ones.

Every session installs the project with its test extra into its own environment, with
uv when it is installed and virtualenv otherwise. Pin packages (torch above all) with a
constraints file: ``PIP_CONSTRAINT=constraints.txt nox -s unit`` (uv sessions read it
too, and so does ``UV_CONSTRAINT``). ``nox -r`` reuses environments; arguments after
``--`` go to pytest: ``nox -s unit -- -k checkpoint -x``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "{{ cookiecutter.venv_backend }}"
nox.options.sessions = ["lint", "unit"]
nox.options.error_on_missing_interpreters = True

PACKAGE = "{{ cookiecutter.package_name }}"
# The type checker of the lint session (the pre-commit hook `mypy`), pinned like the hooks' tools.
MYPY = "mypy==2.4.1"
# The supply-chain checks of the audit session.
ZIZMOR = "zizmor==1.33.1"
PIP_AUDIT = "pip-audit==2.10.1"
COVERAGE_FAIL_UNDER = 85
# `nox -s benchmark` fails when a benchmark's fastest round got this much slower than the
# recorded baseline. The fastest round is the statistic least moved by other load on the machine.
BENCHMARK_FAIL = "min:25%"
BENCHMARK_BASELINE = "baseline"
# pytest-xdist for the integration tier: one worker per core, each with one torch thread (two
# workers on two cores would otherwise run four); OMP_NUM_THREADS set by you wins. Measured on
# two cores, warm, against one process: 1.1-1.5x faster on every task, as its tests train
# many small models. The other tiers run in one process. The unit tier loses: each worker
# imports torch first (2-3 s), more than its millisecond tests take. The regression tier is
# one reference run. The distributed tier already runs two processes per test through
# torchrun. `tests` would be 1.5x faster on workers, but then torchrun runs beside other
# tests, where a rank now and then aborts at exit after a good run; putting the torchrun tests
# on one worker (--dist loadgroup) takes the gain away. `-- -n 0` runs the integration tier
# in one process (for --pdb, or print debugging).
PARALLEL = ["-n", "auto"]


def constraint_args() -> list[str]:
    """``-c FILE`` for every constraints file named in PIP_CONSTRAINT or UV_CONSTRAINT."""
    files: list[str] = []
    for variable in ("PIP_CONSTRAINT", "UV_CONSTRAINT"):
        for name in os.environ.get(variable, "").split():
            path = str(Path(name).resolve())
            if path not in files:
                files.append(path)
    return [arg for path in files for arg in ("-c", path)]


# The extras of the sessions that test the HTTP server (serve), the exported models (export) and
# the tracked runs (track).
ALL_EXTRAS = "test,serve,export,track"


def install_project(session: nox.Session, *extra: str, extras: str = "test") -> None:
    """The project with its test extra, or with ``ALL_EXTRAS`` where the session runs what they serve."""
    session.install(*constraint_args(), "-e", f".[{extras}]", *extra)


def bytecode_env(session: nox.Session) -> dict[str, str]:
    """Let Python cache bytecode, inside the session's environment folder.

    Machines and container images often set PYTHONDONTWRITEBYTECODE; then every run compiles
    torch's sources again and pytest rewrites the assertions of every plugin again, which
    costs seconds a run. The cache goes under ``.nox/<session>/``, never into the source tree.
    Without an environment of its own (``nox --no-venv``) the session keeps Python's defaults.
    """
    location = getattr(session.virtualenv, "location", None)
    if location is None:
        return {}
    return {
        "PYTHONDONTWRITEBYTECODE": "",  # Python only honours a non-empty value
        "PYTHONPYCACHEPREFIX": str(Path(location, "pycache")),
    }


def pytest(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    session.run("python", "-m", "pytest", *args, *session.posargs, env={**bytecode_env(session), **(env or {})})


def parallel_env() -> dict[str, str]:
    """One torch (OpenMP) thread per pytest-xdist worker, unless OMP_NUM_THREADS says otherwise."""
    return {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


@nox.session
def lint(session: nox.Session) -> None:
    """Run the pre-commit hooks (ruff lint and format, mypy, file hygiene) on every file."""
    if not Path(".git").exists():
        session.error("lint runs the pre-commit hooks, which need a git repository: run `git init` first")
    # mypy reads the types of the project's dependencies: the hook runs in this environment, which has them.
    session.install(*constraint_args(), "-e", ".", MYPY, "pre-commit")
    session.run("pre-commit", "run", "--all-files", "--show-diff-on-failure", *session.posargs)


@nox.session
def audit(session: nox.Session) -> None:
    """Supply chain: zizmor over the GitHub workflows (offline), pip-audit over every installed requirement."""
    session.install(*constraint_args(), "-e", f".[{ALL_EXTRAS}]", "pip", ZIZMOR, PIP_AUDIT)
    workflows = sorted(str(path) for path in Path(".github", "workflows").glob("*.yml"))
    if workflows:
        session.run("zizmor", "--offline", *workflows)
    # --strict: a requirement pip-audit cannot check (its feed unreachable, a package the feed does not
    # know) fails the audit; without it, it says "No known vulnerabilities found" having checked nothing.
    try:
        session.run("pip-audit", "--strict", "--skip-editable", "--progress-spinner", "off")
    except CommandFailed:
        session.error(
            "pip-audit found known vulnerabilities or could not check every requirement (above): the audit "
            "asks PyPI's vulnerability feed (pypi.org) and needs the network; where it cannot reach it, "
            "nothing was checked and the audit fails rather than pass"
        )


@nox.session
def unit(session: nox.Session) -> None:
    """Unit tier: shapes, gradients, losses, data contracts; seconds in all (without the serve extra)."""
    install_project(session)
    pytest(session, "tests/unit")


@nox.session
def integration(session: nox.Session) -> None:
    """Integration tier: short training runs, checkpoints, resume, inference, CLI, the HTTP server."""
    install_project(session, extras=ALL_EXTRAS)
    pytest(session, *PARALLEL, "tests/integration", env=parallel_env())


@nox.session
def distributed(session: nox.Session) -> None:
    """Distributed tier: torchrun on two CPU processes, on one node or two, learns what one process learns."""
    install_project(session)
    pytest(session, "tests/distributed")


@nox.session
def regression(session: nox.Session) -> None:
    """Regression tier: a reference model against the golden set and its stored baseline."""
    install_project(session)
    pytest(session, "tests/regression")


@nox.session
def tests(session: nox.Session) -> None:
    """Every CPU tier with a coverage report; fails under the coverage threshold."""
    install_project(session, extras=ALL_EXTRAS)
    pytest(
        session,
        f"--cov={PACKAGE}",
        "--cov-report=term-missing:skip-covered",
        f"--cov-fail-under={COVERAGE_FAIL_UNDER}",
    )


@nox.session(default=False)
def benchmark(session: nox.Session) -> None:
    """Benchmarks of the hot paths (pytest-benchmark), against a recorded baseline; not a tier.

    ``nox -s benchmark -- record`` records the baseline of this machine (in ``.benchmarks/``);
    ``nox -s benchmark`` compares with it and fails past ``BENCHMARK_FAIL``.
    """
    install_project(session, "pytest-benchmark", extras=ALL_EXTRAS)
    args = list(session.posargs)
    env = bytecode_env(session)
    options = ["benchmarks", "-p", "no:randomly", "--benchmark-sort=name", "--benchmark-columns=min,median,mean,rounds"]
    if args[:1] == ["record"]:
        for old in Path(".benchmarks").glob(f"*/*_{BENCHMARK_BASELINE}.json"):
            old.unlink()  # one baseline per machine: compare with the newest only
        session.run("python", "-m", "pytest", *options, f"--benchmark-save={BENCHMARK_BASELINE}", *args[1:], env=env)
        return
    if not any(Path(".benchmarks").glob(f"*/*_{BENCHMARK_BASELINE}.json")):
        session.error("no benchmark baseline for this machine yet: record one with `nox -s benchmark -- record`")
    compare = [f"--benchmark-compare=*_{BENCHMARK_BASELINE}", f"--benchmark-compare-fail={BENCHMARK_FAIL}"]
    session.run("python", "-m", "pytest", *options, *compare, *args, env=env)


@nox.session(default=False)
def scale(session: nox.Session) -> None:
    """Peak memory of `train` and `predict` on data of two sizes ten times apart, the share each
    torchrun process reads{% if cookiecutter.task == "image" %}, and the training throughput against a bare loop{% endif %}: not a tier
    (minutes). ``nox -s scale -- --sizes 1000 10000`` picks the sizes."""
    install_project(session)
    session.run("python", "benchmarks/scale.py", *session.posargs, env=bytecode_env(session))


@nox.session(default=False)
def threads(session: nox.Session) -> None:
    """The default `train` with torch's thread count and with the project's, idle and beside a CPU
    load: not a tier (minutes). ``nox -s threads -- --repeats 5 --load 4`` changes the runs."""
    install_project(session)
    session.run("python", "benchmarks/threads.py", *session.posargs, env=bytecode_env(session))


@nox.session
def gpu(session: nox.Session) -> None:
    """GPU tier (tests marked gpu); fails at once where no CUDA device is visible."""
    install_project(session)
    devices = session.run(
        "python",
        "-c",
        "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)",
        silent=True,
        env=bytecode_env(session),
    )
    if devices is not None and int(devices.strip().splitlines()[-1]) == 0:
        session.error(
            "no CUDA device is visible (torch.cuda.is_available() is False): run `nox -s gpu` on a machine "
            "with an NVIDIA GPU and a CUDA build of torch"
        )
    pytest(session, "-m", "gpu", "tests/gpu", env={"CUBLAS_WORKSPACE_CONFIG": ":4096:8"})


@nox.session(default=False)
def flaky(session: nox.Session) -> None:
    """Run the CPU suite several times in random orders to surface order- or seed-dependent tests."""
    install_project(session, extras=ALL_EXTRAS)
    runs = int(os.environ.get("FLAKY_RUNS", "10"))
    for seed in range(1, runs + 1):
        session.log(f"run {seed}/{runs}: random order seed {seed}")
        pytest(session, "-q", f"--randomly-seed={seed}")


@nox.session(default=False)
def mutation(session: nox.Session) -> None:
    """Mutation testing with mutmut (modules set in pyproject's [tool.mutmut]); prints the score."""
    install_project(session, "mutmut")
    session.run("mutmut", "run", *session.posargs, env=bytecode_env(session))
    session.run("mutmut", "export-cicd-stats")
    stats = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text())
    caught = stats["killed"] + stats["timeout"]
    checked = caught + stats["survived"] + stats["suspicious"]
    session.log(
        f"mutation score {100 * caught / max(checked, 1):.1f}%: {stats['killed']} killed, "
        f"{stats['timeout']} timed out, {stats['survived']} survived, {stats['total']} mutants; "
        "`mutmut results` lists the survivors"
    )
