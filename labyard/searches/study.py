"""Optuna as an algorithm, the platform's tables as its storage.

Every decision (sample a trial, judge a running one, rank them) rebuilds an in-memory study
from the search's trial rows: their params, states, values, intermediate values and
`system_attrs` (where Optuna's pruners record rungs and GridSampler its grid ids). The
rebuilt study is the one Optuna would have kept, so decisions survive a restart and nothing
of Optuna's schema enters the database. Samplers are seeded by the search's seed and the
trial's number, so a decision made twice (a crash between sampling and committing) is the
same decision.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, create_trial
from optuna.trial import TrialState as OptunaState

from labyard.searches.models import SearchTrial, TrialState
from labyard.searchspec import ParamSpace, SearchSettings

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)
STATES = {
    TrialState.RUNNING: OptunaState.RUNNING,
    TrialState.COMPLETE: OptunaState.COMPLETE,
    TrialState.PRUNED: OptunaState.PRUNED,
    TrialState.FAILED: OptunaState.FAIL,
}
SIGNIFICANT = 4  # sampled floats are shown and passed with 4 significant digits


@dataclass(frozen=True)
class Record:
    """What a study needs of one trial row (rows are not changed to build a study)."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None
    steps: dict[str, float]
    system_attrs: dict[str, Any]


def record(row: SearchTrial, steps: dict[str, float] | None = None) -> Record:
    """`row` as a Record, with `steps` instead of its stored ones when given."""
    return Record(
        row.number,
        row.state,
        dict(row.params),
        row.value,
        dict(row.steps or {}) if steps is None else steps,
        dict(row.system_attrs or {}),
    )


@dataclass(frozen=True)
class Sampled:
    """A new trial's number, params (fixed ones included) and Optuna's records of it."""

    number: int
    params: dict[str, Any]
    system_attrs: dict[str, Any]


def distributions(space: dict[str, ParamSpace]) -> dict[str, BaseDistribution]:
    """The Optuna distribution of every searched (not fixed) param."""
    out: dict[str, BaseDistribution] = {}
    for name, p in space.items():
        if p.kind == "float":
            assert p.low is not None and p.high is not None
            out[name] = FloatDistribution(p.low, p.high, log=p.log, step=p.step)
        elif p.kind == "int":
            assert p.low is not None and p.high is not None
            out[name] = IntDistribution(int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
        elif p.kind == "categorical":
            out[name] = CategoricalDistribution(list(p.choices))
    return out


def _fixed(space: dict[str, ParamSpace]) -> dict[str, Any]:
    return {name: p.choices[0] for name, p in space.items() if p.kind == "fixed"}


def _sampler(
    settings: SearchSettings, space: dict[str, ParamSpace], seed: int
) -> optuna.samplers.BaseSampler:
    if settings.algorithm == "grid":
        grid = {n: list(p.choices) for n, p in space.items() if p.kind == "categorical"}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if settings.algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.algorithm == "cmaes":
        return optuna.samplers.CmaEsSampler(
            seed=seed,
            warn_independent_sampling=False,
            independent_sampler=optuna.samplers.RandomSampler(seed=seed),
        )
    startup = max(2, min(10, settings.trials // 4))
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=startup, constant_liar=True, multivariate=True
    )


def pruner(settings: SearchSettings) -> optuna.pruners.BasePruner:
    """The search's early-stopping rule as an Optuna pruner."""
    if settings.early_stopping == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=settings.min_resource, reduction_factor=settings.reduction_factor
        )
    if settings.early_stopping == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=settings.min_resource,
            max_resource=settings.max_resource or "auto",
            reduction_factor=settings.reduction_factor,
        )
    if settings.early_stopping == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=max(1, settings.parallel), n_warmup_steps=settings.min_resource
        )
    return optuna.pruners.NopPruner()


def _frozen(row: Record, dists: dict[str, BaseDistribution]) -> FrozenTrial:
    state = STATES[TrialState(row.state)]
    params = {n: row.params[n] for n in dists if n in row.params}
    steps = {int(k): float(v) for k, v in row.steps.items() if math.isfinite(float(v))}
    value = row.value if state == OptunaState.COMPLETE else None
    return create_trial(
        state=state,
        value=value,
        params=params,
        distributions={n: dists[n] for n in params},
        system_attrs=dict(row.system_attrs),
        intermediate_values=steps,
    )


def build(
    study_name: str,
    settings: SearchSettings,
    space: dict[str, ParamSpace],
    rows: Iterable[SearchTrial | Record],
    *,
    seed: int,
) -> optuna.Study:
    """The search's study as Optuna would hold it, trials in their numbers' order."""
    records = sorted(
        (r if isinstance(r, Record) else record(r) for r in rows), key=lambda r: r.number
    )
    dists = distributions(space)
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        # GridSampler shuffles its grid by the seed: one seed keeps grid ids meaning the same
        # combination across rebuilds; other samplers take a new seed per trial
        sampler=_sampler(
            settings, space, seed if settings.algorithm == "grid" else seed + len(records)
        ),
        pruner=pruner(settings),
        direction="maximize" if settings.goal == "maximize" else "minimize",
        study_name=study_name,
    )
    for r in records:
        study.add_trial(_frozen(r, dists))
    return study


def sample(study: optuna.Study, space: dict[str, ParamSpace]) -> Sampled:
    """Ask the sampler for the next trial's params (floats rounded for people to read)."""
    dists = distributions(space)
    trial = study.ask(dists)
    params: dict[str, Any] = {}
    for name, p in space.items():
        if p.kind == "fixed":
            params[name] = p.choices[0]
        elif p.kind == "float" and p.step is None:
            params[name] = _round(float(trial.params[name]), p)
        else:
            params[name] = trial.params[name]
    frozen = study._storage.get_trial(trial._trial_id)  # noqa: SLF001 - Optuna's own records
    return Sampled(trial.number, params, dict(frozen.system_attrs))


def _round(value: float, p: ParamSpace) -> float:
    assert p.low is not None and p.high is not None
    shown = float(f"{value:.{SIGNIFICANT}g}")
    return min(max(shown, p.low), p.high)


def judge(study: optuna.Study, number: int, after: int | None) -> tuple[int | None, dict[str, Any]]:
    """The step at which the pruner stops running trial `number` (None: it runs on), and
    its system attrs after. Each step reported since step `after` is judged in order, as a
    training loop calling `should_prune()` after every report would: a batch of reports
    read at once is never judged only at its last step, past the rung it reached."""
    storage = study._storage  # noqa: SLF001
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)  # noqa: SLF001
    frozen = storage.get_trial(trial_id)
    new_steps = sorted(s for s in frozen.intermediate_values if after is None or s > after)
    for step in new_steps:
        upto = copy.copy(frozen)
        upto.intermediate_values = {
            s: v for s, v in frozen.intermediate_values.items() if s <= step
        }
        upto.system_attrs = dict(storage.get_trial(trial_id).system_attrs)
        if study.pruner.prune(study, upto):
            return step, dict(storage.get_trial(trial_id).system_attrs)
    return None, dict(storage.get_trial(trial_id).system_attrs)


def importances(study: optuna.Study) -> dict[str, float]:
    """Each searched param's share of the objective's variance (fANOVA), once two or more
    trials completed with different params; {} before that."""
    done = [t for t in study.trials if t.state == OptunaState.COMPLETE]
    if len(done) < 2 or not study.best_trial.params:
        return {}
    try:
        found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:  # e.g. every completed trial had one value
        log.debug("no importances yet: %s", exc)
        return {}
    return {name: float(v) for name, v in found.items()}
