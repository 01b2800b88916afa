"""Versioned prompt templates: ``prompts/<task>/v<N>.md`` with YAML front matter.

A template file looks like::

    ---
    id: classification
    version: 1
    task: classification
    output_schema: schema.json
    models: {anthropic: claude-haiku-5-5, ollama: "qwen3:8b"}
    max_tokens: 1024
    params: {ollama: {temperature: 0, seed: 7}}
    ---
    ## System
    Stable instructions (no ``$variables``: this part is cached by the provider).
    ## User
    The input: $document

Inputs are data, never instructions or template syntax: each is substituted once (string.Template,
so braces or ``$`` in user data stay literal) as JSON, with ``</`` escaped so a value cannot close
the tag it is wrapped in. Which version is active per task is configuration.
"""

from __future__ import annotations

import json
import re
import string
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ai_service.llm.base import RenderedPrompt, canonical_json, sha256_hex
from ai_service.llm.config import LLMConfig
from ai_service.llm.errors import PromptError

_TASK_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_FRONT_MATTER = re.compile(r"\A---\r?\n(?P<meta>.*?)\r?\n---\r?\n(?P<body>.*)\Z", re.DOTALL)
_SECTION = re.compile(r"^## (System|User)[ \t]*$", re.MULTILINE)


#: What the Messages API accepts besides the prompt itself; it rejects sampling parameters
#: (temperature, top_p) on current models, so a prompt pinning them fails at load, not per call.
ANTHROPIC_PARAMS = frozenset(
    {"stop_sequences", "metadata", "service_tier", "thinking", "inference_geo", "speed"}
)


class PromptMeta(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    version: int = Field(ge=1)
    task: str
    description: str = ""
    output_schema: str = "schema.json"
    models: dict[str, str] = Field(default_factory=dict)
    max_tokens: int = Field(default=1024, gt=0)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _anthropic_params_are_accepted(
        cls, params: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        rejected = sorted(set(params.get("anthropic", {})) - ANTHROPIC_PARAMS)
        if rejected:
            raise ValueError(
                f"params.anthropic may not set {', '.join(rejected)}; "
                f"allowed: {', '.join(sorted(ANTHROPIC_PARAMS))}"
            )
        return params


class PromptTemplate:
    """One parsed template file."""

    def __init__(self, meta: PromptMeta, system: str, user: str, output_schema: dict[str, Any]):
        self.meta = meta
        self.system = system
        self.user = user
        self.output_schema = output_schema
        self._user_template = string.Template(user)
        self.variables = frozenset(self._user_template.get_identifiers())

    @property
    def text(self) -> str:
        """The unfilled template as the fingerprint sees it."""
        return f"## System\n{self.system}\n## User\n{self.user}"

    def render(self, variables: Mapping[str, Any]) -> RenderedPrompt:
        missing = sorted(self.variables - variables.keys())
        if missing:
            raise PromptError(
                f"prompt {self.meta.id} v{self.meta.version} needs input {', '.join(missing)}"
            )
        values = {name: encode_value(variables[name]) for name in self.variables}
        return RenderedPrompt(
            task=self.meta.task,
            prompt_id=self.meta.id,
            version=self.meta.version,
            system=self.system,
            user=self._user_template.substitute(values),
            template_text=self.text,
            input_sha256=input_fingerprint({n: variables[n] for n in self.variables}),
            max_tokens=self.meta.max_tokens,
            models=dict(self.meta.models),
            params={k: dict(v) for k, v in self.meta.params.items()},
        )


def encode_value(value: Any) -> str:
    """An input value as inert text: JSON, with ``</`` escaped (``<\\/`` is still valid JSON)."""
    text = json.dumps(value, ensure_ascii=False, indent=None, default=str)
    return text.replace("</", "<\\/")


def input_fingerprint(variables: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_json(dict(variables)))


def prompt_fingerprint(
    prompt: RenderedPrompt,
    *,
    output_schema: Mapping[str, Any],
    provider: str,
    model: str,
    dataset_sha256: str | None = None,
    scorer_version: str | None = None,
) -> str:
    """sha256 naming everything that decides a provider's answer except the input itself.

    ``dataset_sha256`` and ``scorer_version`` are for evals: an eval's verdict belongs to one
    prompt *and* one dataset and scorer. Left out when None, so adding them later does not
    change the fingerprints of calls that do not use them.
    """
    parts: dict[str, Any] = {
        "prompt_id": prompt.prompt_id,
        "version": prompt.version,
        "template": prompt.template_text,
        "output_schema": output_schema,
        "provider": provider,
        "model": model,
        "max_tokens": prompt.max_tokens,
        "params": prompt.params_for(provider),
    }
    if dataset_sha256 is not None:
        parts["dataset_sha256"] = dataset_sha256
    if scorer_version is not None:
        parts["scorer_version"] = scorer_version
    return sha256_hex(canonical_json(parts))


def parse_template(text: str, *, origin: str, schema_dir: Path | None = None) -> PromptTemplate:
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise PromptError(f"{origin}: no front matter (the file must start with a '---' block)")
    try:
        raw_meta = yaml.safe_load(match["meta"])
        meta = PromptMeta.model_validate(raw_meta)
    except (yaml.YAMLError, ValidationError) as exc:
        raise PromptError(f"{origin}: invalid front matter: {exc}") from exc
    sections = _SECTION.split(match["body"])
    # split() yields [preamble, "System", text, "User", text]
    if len(sections) != 5 or sections[1] != "System" or sections[3] != "User":
        raise PromptError(f"{origin}: the body must have a '## System' then a '## User' section")
    system, user = sections[2].strip("\n"), sections[4].strip("\n")
    if not string.Template(system).is_valid():
        raise PromptError(f"{origin}: the System section has a lone '$'; write $$ for a dollar")
    if string.Template(system).get_identifiers():
        raise PromptError(
            f"{origin}: the System section must not contain $variables (it is cached as-is); "
            "move input into the User section or write $$ for a literal dollar"
        )
    system = string.Template(system).substitute({})
    if not string.Template(user).is_valid():
        raise PromptError(f"{origin}: the User section has a malformed $placeholder")
    schema: dict[str, Any] = {}
    if schema_dir is not None:
        schema = _load_schema(schema_dir / meta.output_schema, origin=origin)
    return PromptTemplate(meta, system, user, schema)


def _load_schema(path: Path, *, origin: str) -> dict[str, Any]:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PromptError(f"{origin}: output schema {path.name} unreadable: {exc}") from exc
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise PromptError(f"{origin}: output schema {path.name} must be a JSON object schema")
    return schema


class PromptRegistry:
    """Loads templates lazily from ``root`` and caches them; ``active_versions`` picks versions."""

    def __init__(self, root: Path, active_versions: Mapping[str, int] | None = None) -> None:
        self._root = root
        self._active = dict(active_versions or {})
        self._loaded: dict[tuple[str, int], PromptTemplate] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: LLMConfig) -> PromptRegistry:
        return cls(config.prompts_dir, config.prompt_versions)

    def active_version(self, task: str) -> int:
        return self._active.get(task, 1)

    def template(self, task: str, version: int | None = None) -> PromptTemplate:
        if not _TASK_NAME.match(task):
            raise PromptError(f"invalid task name {task!r}")
        version = version if version is not None else self.active_version(task)
        with self._lock:
            cached = self._loaded.get((task, version))
        if cached is not None:
            return cached
        path = self._root / task / f"v{version}.md"
        origin = f"prompts/{task}/v{version}.md"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PromptError(f"{origin} not found under {self._root}") from exc
        template = parse_template(text, origin=origin, schema_dir=path.parent)
        if template.meta.task != task or template.meta.version != version:
            raise PromptError(
                f"{origin}: front matter says task {template.meta.task!r} "
                f"version {template.meta.version}, the path says {task!r} version {version}"
            )
        with self._lock:
            self._loaded[(task, version)] = template
        return template

    def render(
        self, task: str, variables: Mapping[str, Any], *, version: int | None = None
    ) -> RenderedPrompt:
        return self.template(task, version).render(variables)

    def tasks(self) -> list[str]:
        return sorted(
            p.name for p in self._root.iterdir() if p.is_dir() and _TASK_NAME.match(p.name)
        )
