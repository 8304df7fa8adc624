"""Checks the CRD schema cannot express, because they need the catalogs and the planner.

An unknown architecture or GPU key, a context longer than the model supports, a tensor-
parallel degree the model's shape cannot split into, a model that does not fit even at the
largest degree, engine arguments that fight lmscale's own. Each problem names the field and
the fix; the reconciler reports them as InvalidSpec and leaves running children alone.

Import this module explicitly (`from lmscale.api import semantic`): it pulls in the planner,
which the rest of `lmscale.api` does not need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lmscale.api.engine import EngineKind
from lmscale.api.model import Model
from lmscale.api.resource import FieldError
from lmscale.api.spec import LanguageModelDeploymentSpec
from lmscale.api.status import ConditionReason
from lmscale.planner import auto, catalog, parallelism, performance, storage, weights
from lmscale.planner.plan import CapacityPlan, plan_replica
from lmscale.render import engines
from lmscale.render import flags as engine_flags

# A shape whose counted parameters are this far from the published count has a typo.
PARAMETER_TOLERANCE = 0.10
# The planner's canonical dtype names where spec.model.dtype spells them differently.
_SPEC_DTYPE = {"float8": "fp8"}
FIT_FIX = (
    "choose a GPU type with more memory (accelerator.type), a smaller model.dtype "
    "(fp8 or int4), or a shorter model.maxContextLength"
)
FALLBACK_FIT_FIX = (
    "this fallback cannot hold the model at any degree up to 8 GPUs: choose a fallback type "
    "with more memory or remove the entry"
)


@dataclass(frozen=True)
class Resolution:
    """A spec checked against the catalogs and planned, or what is wrong with it."""

    problems: tuple[FieldError, ...]
    model: catalog.ModelArchitecture | None = None
    gpu: catalog.GpuType | None = None
    context: int | None = None
    plan: CapacityPlan | None = None
    # One plan per accelerator.fallbacks entry, in order (empty without fallbacks).
    fallback_plans: tuple[CapacityPlan, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> ConditionReason:
        """The InvalidSpec reason: the first problem's, or SpecValid."""
        return self.problems[0].reason if self.problems else ConditionReason.SPEC_VALID

    @property
    def message(self) -> str:
        """Every problem, one per line, for the InvalidSpec condition and an Event."""
        return "\n".join(str(p) for p in self.problems)


@dataclass(frozen=True)
class _Type:
    """One GPU type the spec lists, and where its fields are, for messages."""

    key: str
    gpus_per_replica: int | str
    path: str  # spec.accelerator or spec.accelerator.fallbacks[i]
    primary: bool


def _types(spec: LanguageModelDeploymentSpec) -> list[_Type]:
    accelerator = spec.accelerator
    return [_Type(accelerator.type, accelerator.gpus_per_replica, "spec.accelerator", True),
            *(_Type(f.type, f.gpus_per_replica, f"spec.accelerator.fallbacks[{i}]", False)
              for i, f in enumerate(accelerator.fallbacks))]


def check(
    spec: LanguageModelDeploymentSpec, *, known: catalog.Catalog | None = None
) -> list[FieldError]:
    """The problems with `spec`; empty when it can be served."""
    return list(resolve(spec, known=known).problems)


def resolve(
    spec: LanguageModelDeploymentSpec, *, known: catalog.Catalog | None = None,
    decided: Mapping[str, auto.Decided] | None = None, wait: bool = True,
) -> Resolution:
    """Check `spec` against the catalogs (`known`, default the packaged one) and plan a replica
    of every GPU type it lists (the primary, then each fallback).

    The checks run in order and stop at the first stage with problems, since a later stage
    needs what the earlier one resolved (no plan without a model and a GPU). A fallback is
    held to the same rules as the primary: one that cannot hold the model makes the spec
    invalid, with the entry named, rather than a Deployment that could never serve.
    `decided` holds earlier `gpusPerReplica: auto` choices by GPU type (kept if still valid);
    `wait=False` raises `auto.CalibrationPending` where a choice needs calibrations still
    computing (`auto.plan_auto`).
    """
    cat = known or catalog.default()
    types = _types(spec)
    problems = engine_arg_problems(spec)
    model, model_problems = _architecture(spec.model, cat)
    problems += model_problems
    gpus = []
    for entry in types:
        gpu, gpu_problems = _gpu(entry, cat)
        gpus.append(gpu)
        problems += gpu_problems
    primary = gpus[0]
    if model is None or any(g is None for g in gpus):
        return Resolution(problems=tuple(problems), model=model, gpu=primary)
    context = spec.model.max_context_length or model.max_context
    problems += _context_problems(model, context)
    for entry, gpu in zip(types, gpus, strict=True):
        assert gpu is not None
        problems += _hardware_problems(spec, model, gpu, entry)
    if problems:
        return Resolution(problems=tuple(problems), model=model, gpu=primary, context=context)
    plans = []
    for entry, gpu in zip(types, gpus, strict=True):
        assert gpu is not None
        plan, problem = _plan_type(spec, model, gpu, entry, context, cat,
                                   (decided or {}).get(gpu.key), wait=wait)
        plans.append(plan)
        if problem is not None:
            problems.append(problem)
    if problems:
        return Resolution(problems=tuple(problems), model=model, gpu=primary, context=context)
    return Resolution(problems=(), model=model, gpu=primary, context=context, plan=plans[0],
                      fallback_plans=tuple(plans[1:]))


def _plan_type(
    spec: LanguageModelDeploymentSpec,
    model: catalog.ModelArchitecture,
    gpu: catalog.GpuType,
    entry: _Type,
    context: int,
    cat: catalog.Catalog,
    decided: auto.Decided | None = None,
    *,
    wait: bool = True,
) -> tuple[CapacityPlan, FieldError | None]:
    """A replica of one listed type, at its explicit degree or the one auto chooses."""
    plan_for = _planner(spec, model, gpu, context, cat)
    explicit = entry.gpus_per_replica
    if explicit == "auto":
        plan = auto.plan_auto(model, [gpu], workload(spec), known=cat, decided=decided,
                              wait=wait, **_plan_options(spec, context))
    else:
        plan = plan_for(int(explicit))
    if not plan.fits:
        return plan, _does_not_fit(plan, explicit, plan_for, entry)
    return plan, None


def _architecture(
    model: Model, cat: catalog.Catalog
) -> tuple[catalog.ModelArchitecture | None, list[FieldError]]:
    if model.architecture is not None:
        try:
            return cat.model(model.architecture), []
        except catalog.UnknownKeyError as error:
            return None, [
                FieldError(
                    "spec.model.architecture",
                    f"{error}; use a catalog key (`lmscale plan --list`) or describe the "
                    "architecture inline with model.shape instead",
                    ConditionReason.UNKNOWN_ARCHITECTURE,
                )
            ]
    return _shape_architecture(model)


def _shape_architecture(
    model: Model,
) -> tuple[catalog.ModelArchitecture | None, list[FieldError]]:
    shape = model.shape
    assert shape is not None  # the schema requires architecture or shape
    entry = {
        "layers": shape.layers,
        "hidden_size": shape.hidden_size,
        "attention_heads": shape.attention_heads,
        "kv_heads": shape.kv_heads,
        "head_dim": shape.head_dim or shape.hidden_size // shape.attention_heads,
        "intermediate_size": shape.ffn_size,
        "vocab_size": shape.vocab_size,
        "max_context": shape.max_context_length,
        "tied_embeddings": shape.tied_embeddings,
        "hf_id": model.name,
    }
    try:
        arch = catalog.model_from_dict(model.name, entry)
    except catalog.CatalogError as error:
        return None, [FieldError("spec.model.shape", f"{error}; fix model.shape")]
    problems = []
    if shape.parameters is not None:
        counted = weights.parameter_count(arch).total
        if abs(counted - shape.parameters) > PARAMETER_TOLERANCE * shape.parameters:
            problems.append(
                FieldError(
                    "spec.model.shape.parameters",
                    f"model.shape describes {counted / 1e9:.2f}B parameters but "
                    f"model.shape.parameters says {shape.parameters / 1e9:.2f}B; check layers, "
                    "hiddenSize, ffnSize, vocabSize, kvHeads and tiedEmbeddings against the "
                    "model's config.json",
                )
            )
    return arch, problems


def _gpu(entry: _Type, cat: catalog.Catalog) -> tuple[catalog.GpuType | None, list[FieldError]]:
    try:
        return cat.gpu(entry.key), []
    except catalog.UnknownKeyError as error:
        return None, [
            FieldError(
                f"{entry.path}.type",
                f"{error}; use a GPU catalog key (`lmscale plan --list`)",
                ConditionReason.UNKNOWN_GPU_TYPE,
            )
        ]


def _context_problems(model: catalog.ModelArchitecture, context: int) -> list[FieldError]:
    if context <= model.max_context:
        return []
    return [
        FieldError(
            "spec.model.maxContextLength",
            f"{context} tokens exceeds {model.key}'s maximum context of "
            f"{model.max_context}; set model.maxContextLength to at most {model.max_context}",
            ConditionReason.CONTEXT_TOO_LONG,
        )
    ]


def _hardware_problems(
    spec: LanguageModelDeploymentSpec,
    model: catalog.ModelArchitecture,
    gpu: catalog.GpuType,
    entry: _Type,
) -> list[FieldError]:
    """What no tensor-parallel degree can fix on one type: dtype, an impossible degree."""
    problems = []
    dtype = spec.model.dtype.value
    if performance.compute_tflops(gpu, dtype) <= 0:
        supported = ", ".join(_SPEC_DTYPE.get(d, d) for d in gpu.supported_dtypes)
        if entry.primary:
            problems.append(FieldError(
                "spec.model.dtype",
                f"{gpu.key} cannot run {dtype} weights; use one of {supported} "
                "or another accelerator.type",
                ConditionReason.DOES_NOT_FIT))
        else:
            problems.append(FieldError(
                f"{entry.path}.type",
                f"{gpu.key} cannot run {dtype} weights (it runs {supported}); choose another "
                "fallback type or remove the entry",
                ConditionReason.DOES_NOT_FIT))
    explicit = entry.gpus_per_replica
    if explicit != "auto":
        problem = parallelism.tp_problem(model, gpu, int(explicit))
        if problem:
            valid = ", ".join(str(tp) for tp in parallelism.valid_tp_degrees(model, gpu))
            problems.append(
                FieldError(
                    f"{entry.path}.gpusPerReplica",
                    f"{problem}; use auto or one of {valid}",
                    ConditionReason.DOES_NOT_FIT,
                )
            )
    return problems


def _planner(
    spec: LanguageModelDeploymentSpec,
    model: catalog.ModelArchitecture,
    gpu: catalog.GpuType,
    context: int,
    cat: catalog.Catalog,
) -> Callable[[int | None], CapacityPlan]:
    def plan_for(gpus_per_replica: int | None) -> CapacityPlan:
        return plan_replica(model, gpu, gpus_per_replica=gpus_per_replica, known=cat,
                            **_plan_options(spec, context))

    return plan_for


def _plan_options(spec: LanguageModelDeploymentSpec, context: int) -> dict[str, Any]:
    source = storage.source_scheme(spec.model.source.uri if spec.model.source else None)
    return {"dtype": spec.model.dtype.value, "context": context, "source": source}


def workload(spec: LanguageModelDeploymentSpec) -> auto.Workload:
    """What `gpusPerReplica: auto` chooses for: the SLO, token mix and tolerance band the
    autoscaler calibrates with."""
    objective = spec.slo
    return auto.Workload(
        ttft_p95_s=objective.ttft_p95_ms / 1000.0,
        tpot_p95_s=objective.tpot_p95_ms / 1000.0,
        mean_prompt_tokens=float(objective.mean_prompt_tokens),
        mean_output_tokens=float(objective.mean_output_tokens),
        tolerance=spec.scaling.tolerance,
    )


def _does_not_fit(
    plan: CapacityPlan, explicit: int | str, plan_for: Callable[[int | None], CapacityPlan],
    entry: _Type,
) -> FieldError:
    field = entry.path.removeprefix("spec.")
    if explicit != "auto":
        smallest = plan_for(None)
        if smallest.fits:
            return FieldError(
                f"{entry.path}.gpusPerReplica",
                f"{plan.reason}; set {field}.gpusPerReplica to "
                f"{smallest.gpus_per_replica} or auto",
                ConditionReason.DOES_NOT_FIT,
            )
    fix = FIT_FIX if entry.primary else FALLBACK_FIT_FIX
    return FieldError(f"{entry.path}.type", f"{plan.reason}; {fix}", ConditionReason.DOES_NOT_FIT)


def engine_arg_problems(spec: LanguageModelDeploymentSpec) -> list[FieldError]:
    """engine.args the engine would reject, or that fight a flag lmscale sets.

    Flags are read with the pinned engine's own flag list (`lmscale.render.flags`). With a
    custom engine.image the engine may be another release, so only lmscale's own flags are
    checked then: an unknown flag there is the image's business.
    """
    kind = spec.engine.kind
    profile = engines.engine(kind)
    scan = engine_flags.scan(kind, spec.engine.args)
    pinned = spec.engine.image in (None, profile.image)
    problems: list[tuple[int, FieldError]] = []

    def add(index: int, message: str) -> None:
        problems.append((index, FieldError(f"spec.engine.args[{index}]", message)))

    for option in scan.options:
        field = option.flag and profile.managed_flags.get(option.flag.name)
        if field is not None:
            fix = f"set {field} instead" if field else "lmscale needs its own value"
            add(option.index, f"{option.written} is set by lmscale; remove it ({fix})")
        elif pinned and (option.flag is None or option.abbreviation):
            add(option.index, _unknown_flag(kind, option))
    if pinned:
        for index, error in scan.errors:
            add(index, f"{error} for {_engine_name(kind)}; fix engine.args")
        unknown = {o.index for o in scan.options if o.flag is None}
        for index, arg in scan.positionals:
            if index - 1 in unknown:
                continue  # most likely the unknown flag's value: one problem is enough
            add(index, f"{arg!r} is not the value of any flag and {_engine_name(kind)} takes no "
                "more positional arguments; remove it or put the flag it belongs to before it")
    side = _side_port_problem(spec, profile, scan)
    ordered = [p for _, p in sorted(problems, key=lambda item: item[0])]
    return ordered + ([side] if side else [])


def _engine_name(kind: EngineKind) -> str:
    return f"{engine_flags.NAMES[kind]} {engine_flags.VERSIONS[kind]}"


def _unknown_flag(kind: EngineKind, option: engine_flags.Option) -> str:
    name = _engine_name(kind)
    if option.abbreviation and option.flag is not None:
        return (f"{option.written} is not a flag of {name}, only an abbreviation the parser "
                f"accepts while it is unambiguous; write {option.flag.name}")
    if option.candidates:
        return (f"{option.written} is ambiguous for {name} (it could be "
                f"{', '.join(option.candidates)}); write the full flag")
    hint = engine_flags.suggest(kind, option.written)
    mean = f"did you mean {' or '.join(hint)}? " if hint else ""
    return (f"{option.written} is not a flag of {name}, which would exit at start; {mean}"
            "fix or remove it (or set engine.image to an image whose engine has it)")


def _side_port_problem(
    spec: LanguageModelDeploymentSpec, profile: engines.Engine, scan: engine_flags.Scan
) -> FieldError | None:
    """engine.port on the second listener the engine opens (TGI's --prometheus-port)."""
    if profile.side_port is None:
        return None
    flag, port = profile.side_port
    for option in scan.options:
        if option.flag is not None and option.flag.name == flag and option.values:
            port = int(option.values[0]) if option.values[0].isdigit() else port
    if spec.engine.port != port:
        return None
    return FieldError(
        "spec.engine.port",
        f"{_engine_name(spec.engine.kind)} also listens on {port} ({flag}); set engine.port "
        f"to another port, e.g. 8000, or pass {flag} with another port in engine.args",
    )
