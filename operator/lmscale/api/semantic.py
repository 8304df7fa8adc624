"""Checks the CRD schema cannot express, because they need the catalogs and the planner.

An unknown architecture or GPU key, a context longer than the model supports, a tensor-
parallel degree the model's shape cannot split into, a model that does not fit even at the
largest degree, engine arguments that fight lmscale's own. Each problem names the field and
the fix; the reconciler reports them as InvalidSpec and leaves running children alone.

Import this module explicitly (`from lmscale.api import semantic`): it pulls in the planner,
which the rest of `lmscale.api` does not need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lmscale.api.model import Model
from lmscale.api.resource import FieldError
from lmscale.api.spec import LanguageModelDeploymentSpec
from lmscale.api.status import ConditionReason
from lmscale.planner import catalog, parallelism, performance, storage, weights
from lmscale.planner.plan import CapacityPlan, plan_replica
from lmscale.render import engines

# A shape whose counted parameters are this far from the published count has a typo.
PARAMETER_TOLERANCE = 0.10
# The planner's canonical dtype names where spec.model.dtype spells them differently.
_SPEC_DTYPE = {"float8": "fp8"}
FIT_FIX = (
    "choose a GPU type with more memory (accelerator.type), a smaller model.dtype "
    "(fp8 or int4), or a shorter model.maxContextLength"
)


@dataclass(frozen=True)
class Resolution:
    """A spec checked against the catalogs and planned, or what is wrong with it."""

    problems: tuple[FieldError, ...]
    model: catalog.ModelArchitecture | None = None
    gpu: catalog.GpuType | None = None
    context: int | None = None
    plan: CapacityPlan | None = None

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


def check(
    spec: LanguageModelDeploymentSpec, *, known: catalog.Catalog | None = None
) -> list[FieldError]:
    """The problems with `spec`; empty when it can be served."""
    return list(resolve(spec, known=known).problems)


def resolve(
    spec: LanguageModelDeploymentSpec, *, known: catalog.Catalog | None = None
) -> Resolution:
    """Check `spec` against the catalogs (`known`, default the packaged one) and plan a replica.

    The checks run in order and stop at the first stage with problems, since a later stage
    needs what the earlier one resolved (no plan without a model and a GPU).
    """
    cat = known or catalog.default()
    problems = engine_arg_problems(spec)
    model, model_problems = _architecture(spec.model, cat)
    gpu, gpu_problems = _gpu(spec.accelerator.type, cat)
    problems += model_problems + gpu_problems
    if model is None or gpu is None:
        return Resolution(problems=tuple(problems), model=model, gpu=gpu)
    context = spec.model.max_context_length or model.max_context
    problems += _hardware_problems(spec, model, gpu, context)
    if problems:
        return Resolution(problems=tuple(problems), model=model, gpu=gpu, context=context)
    plan_for = _planner(spec, model, gpu, context, cat)
    explicit = spec.accelerator.gpus_per_replica
    plan = plan_for(None if explicit == "auto" else int(explicit))
    if not plan.fits:
        problems.append(_does_not_fit(plan, explicit, plan_for))
        return Resolution(problems=tuple(problems), model=model, gpu=gpu, context=context)
    return Resolution(problems=(), model=model, gpu=gpu, context=context, plan=plan)


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


def _gpu(key: str, cat: catalog.Catalog) -> tuple[catalog.GpuType | None, list[FieldError]]:
    try:
        return cat.gpu(key), []
    except catalog.UnknownKeyError as error:
        return None, [
            FieldError(
                "spec.accelerator.type",
                f"{error}; use a GPU catalog key (`lmscale plan --list-gpus`)",
                ConditionReason.UNKNOWN_GPU_TYPE,
            )
        ]


def _hardware_problems(
    spec: LanguageModelDeploymentSpec,
    model: catalog.ModelArchitecture,
    gpu: catalog.GpuType,
    context: int,
) -> list[FieldError]:
    """What no tensor-parallel degree can fix: context, dtype, an impossible explicit degree."""
    problems = []
    if context > model.max_context:
        problems.append(
            FieldError(
                "spec.model.maxContextLength",
                f"{context} tokens exceeds {model.key}'s maximum context of "
                f"{model.max_context}; set model.maxContextLength to at most {model.max_context}",
                ConditionReason.CONTEXT_TOO_LONG,
            )
        )
    dtype = spec.model.dtype.value
    if performance.compute_tflops(gpu, dtype) <= 0:
        problems.append(
            FieldError(
                "spec.model.dtype",
                f"{gpu.key} cannot run {dtype} weights; use one of "
                f"{', '.join(_SPEC_DTYPE.get(d, d) for d in gpu.supported_dtypes)} "
                "or another accelerator.type",
                ConditionReason.DOES_NOT_FIT,
            )
        )
    explicit = spec.accelerator.gpus_per_replica
    if explicit != "auto":
        problem = parallelism.tp_problem(model, gpu, int(explicit))
        if problem:
            valid = ", ".join(str(tp) for tp in parallelism.valid_tp_degrees(model, gpu))
            problems.append(
                FieldError(
                    "spec.accelerator.gpusPerReplica",
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
    source = storage.source_scheme(spec.model.source.uri if spec.model.source else None)

    def plan_for(gpus_per_replica: int | None) -> CapacityPlan:
        return plan_replica(
            model,
            gpu,
            dtype=spec.model.dtype.value,
            context=context,
            gpus_per_replica=gpus_per_replica,
            source=source,
            known=cat,
        )

    return plan_for


def _does_not_fit(
    plan: CapacityPlan, explicit: int | str, plan_for: Callable[[int | None], CapacityPlan]
) -> FieldError:
    if explicit != "auto":
        auto = plan_for(None)
        if auto.fits:
            return FieldError(
                "spec.accelerator.gpusPerReplica",
                f"{plan.reason}; set accelerator.gpusPerReplica to {auto.gpus_per_replica} or auto",
                ConditionReason.DOES_NOT_FIT,
            )
    return FieldError(
        "spec.accelerator.type", f"{plan.reason}; {FIT_FIX}", ConditionReason.DOES_NOT_FIT
    )


def engine_arg_problems(spec: LanguageModelDeploymentSpec) -> list[FieldError]:
    """engine.args that repeat a flag lmscale sets, which would fight (or crash) the engine."""
    problems = []
    for index, arg in enumerate(spec.engine.args):
        managed = engines.managed_flag(arg, spec.engine.kind)
        if managed is not None:
            flag, field = managed
            fix = f"set {field} instead" if field else "lmscale needs its own value"
            problems.append(
                FieldError(
                    f"spec.engine.args[{index}]",
                    f"{flag} is set by lmscale; remove it from engine.args ({fix})",
                )
            )
    return problems
