"""What an eval measured, named by a sha256.

The *runtime* fingerprint is what the orchestrator computes for every call
(:func:`ai_service.llm.prompts.prompt_fingerprint`: template text, output schema, provider,
pinned model, generation parameters); the *eval* fingerprint adds the dataset's hash and the
scorer version, so a verdict belongs to one prompt, one dataset and one way of scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

from ai_service.llm.base import RenderedPrompt
from ai_service.llm.config import AnthropicConfig, OllamaConfig
from ai_service.llm.orchestrator import output_schema_of
from ai_service.llm.prompts import PromptRegistry, PromptTemplate, prompt_fingerprint
from evals.cases import dataset_sha256
from evals.paths import Workspace
from evals.scorers import SCORER_VERSION
from evals.tasks import EvalTask

PROVIDERS = ("anthropic", "ollama")
DEFAULT_MODELS = {
    "anthropic": AnthropicConfig().default_model,
    "ollama": OllamaConfig().default_model,
}


def pinned_model(template: PromptTemplate, provider: str) -> str:
    """The model a provider uses for this prompt when configuration does not override it."""
    return template.meta.models.get(provider) or DEFAULT_MODELS[provider]


def unfilled(template: PromptTemplate) -> RenderedPrompt:
    """The template as a prompt with empty input: the fingerprint never reads the input."""
    return template.render(dict.fromkeys(template.variables))


@dataclass(frozen=True)
class PromptIdentity:
    task: str  # eval task (dataset)
    prompt: str  # prompts/<prompt>/
    version: int
    provider: str
    model: str
    runtime: str  # what the orchestrator checks against LLMConfig.evaluated_fingerprints
    dataset_sha256: str
    scorer_version: str
    eval: str  # the prompts.lock key

    @property
    def path(self) -> str:
        return f"prompts/{self.prompt}/v{self.version}.md"


def identify(
    task: EvalTask,
    provider: str,
    workspace: Workspace,
    prompts: PromptRegistry | None = None,
    *,
    model: str | None = None,
) -> PromptIdentity:
    prompts = prompts or PromptRegistry(workspace.prompts)
    template = prompts.template(task.prompt)
    model = model or pinned_model(template, provider)
    stub = unfilled(template)
    schema = output_schema_of(task.output_model)
    data = dataset_sha256(workspace.datasets, task.name)
    return PromptIdentity(
        task=task.name,
        prompt=task.prompt,
        version=template.meta.version,
        provider=provider,
        model=model,
        runtime=prompt_fingerprint(stub, output_schema=schema, provider=provider, model=model),
        dataset_sha256=data,
        scorer_version=SCORER_VERSION,
        eval=prompt_fingerprint(
            stub,
            output_schema=schema,
            provider=provider,
            model=model,
            dataset_sha256=data,
            scorer_version=SCORER_VERSION,
        ),
    )
