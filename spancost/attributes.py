"""Every attribute name spancost reads or writes, spelled once.

Standard names follow the OpenTelemetry GenAI semantic conventions. The Python semconv package
marks them as moved, so they are spelled here rather than imported. spancost's own names live
under ``spancost.``. A test checks that every attribute key used in a ``.sql`` file is defined here.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

# --- GenAI semantic conventions: request and response -------------------------------------------

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
"""The kind of GenAI operation: see `Operation`."""
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
"""Which provider served the call (openai, anthropic, aws.bedrock, ...)."""
GEN_AI_SYSTEM: Final = "gen_ai.system"
"""Older spelling of `gen_ai.provider.name`, still emitted by some instrumentations."""
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
"""The model the caller asked for."""
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
"""The model that answered (often a dated snapshot of the requested one)."""
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
"""The provider's id of the completion."""
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
"""Why each choice stopped, as a list."""
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
"""The caller's output-token limit."""
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
"""Sampling temperature the caller asked for."""
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
"""Nucleus sampling mass the caller asked for."""
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
"""The number of dimensions the caller asked embeddings to have."""
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
"""True on a call that streams its response."""
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
"""Seconds from the request to the first streamed chunk (the name the anthropic SDK's span uses)."""
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
"""Name of the agent an `invoke_agent` span runs."""
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
"""Name of the tool an `execute_tool` span runs."""
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
"""Name of the workflow an `invoke_workflow` span runs (the conventions have no workflow yet; this is
the name proposed for it)."""
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
"""On the token-usage metric: `input` or `output`."""

GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
"""Opt-in content: the chat history sent to the model, as JSON (semantic-convention message parts)."""
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
"""Opt-in content: the messages the model returned, as JSON."""
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
"""Opt-in content: the system prompt, as JSON parts."""

CONTENT_ATTRIBUTES: Final = frozenset(
    {
        GEN_AI_INPUT_MESSAGES,
        GEN_AI_OUTPUT_MESSAGES,
        GEN_AI_SYSTEM_INSTRUCTIONS,
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.tool.definitions",
    }
)
"""Attributes that carry prompt or completion text; kept only when the user opts in to content."""
CONTENT_PREFIXES: Final = ("gen_ai.prompt.", "gen_ai.completion.", "llm.prompts", "llm.completions")
"""Older spellings of content (OpenLLMetry's indexed `gen_ai.prompt.0.content`, ...)."""
CONTENT_EVENT_PREFIX: Final = "gen_ai."
"""Events on a model-call span named `gen_ai.*` (`gen_ai.user.message`, `gen_ai.choice`,
`gen_ai.content.prompt`, ...) carry content too."""

# --- GenAI semantic conventions: usage ------------------------------------------------------------

GEN_AI_USAGE_PREFIX: Final = "gen_ai.usage."
"""Every usage (and cost) attribute starts so."""
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
"""All input tokens of the call, cached ones included."""
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
"""All output tokens of the call, reasoning included."""
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
"""Input tokens served from the provider's prompt cache."""
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
"""Input tokens written to the provider's prompt cache (all TTLs)."""
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
"""Older spelling of `gen_ai.usage.cache_write.input_tokens`; read, never written."""
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
"""Output tokens spent on reasoning (a part of the output tokens)."""

# --- GenAI cost, as drafted for the conventions ---------------------------------------------------

GEN_AI_USAGE_COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
"""Cost of the call in `gen_ai.usage.cost.currency`, on inference spans only (double)."""
GEN_AI_USAGE_COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
"""Currency of the cost amount; spancost always writes USD."""
GEN_AI_USAGE_COST_SOURCE: Final = "gen_ai.usage.cost.source"
"""Who computed the cost: see `CostSource`."""

# --- Provider-specific names read from other emitters -------------------------------------------

ANTHROPIC_CACHE_WRITE_1H_TOKENS: Final = "anthropic.usage.cache_creation.ephemeral_1h_input_tokens"
"""Set by the anthropic SDK's own span: the part of the cache write that went to the 1-hour cache."""
ANTHROPIC_STOP_REASON: Final = "anthropic.message.stop_reason"
"""Set by the anthropic SDK's own span: why the message stopped (its finish reason)."""
ANTHROPIC_RESPONSE_SERVICE_TIER: Final = "anthropic.response.service_tier"
"""Set by the anthropic SDK's own span: the service tier that served the call."""
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
"""The service tier an OpenAI caller asked for."""
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
"""The service tier that served an OpenAI call."""

# --- Older spellings other emitters still send (read, never written) ---------------------------------
# OpenLLMetry: traceloop/openllmetry packages/opentelemetry-semantic-conventions-ai/opentelemetry/
# semconv_ai/__init__.py, `SpanAttributes` (v0.4.x: LLM_USAGE_PROMPT_TOKENS, LLM_REQUEST_TYPE, ...;
# v0.5.x keeps them as "Legacy LLM_* aliases"). OpenLIT: openlit/openlit
# sdk/python/src/openlit/semcov/__init__.py, `SemanticConvention` (GEN_AI_USAGE_COST, ...).

GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
"""OpenLLMetry's (semconv-ai `LLM_USAGE_PROMPT_TOKENS`) and older OpenLIT's all-input token count."""
GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
"""OpenLLMetry's (semconv-ai `LLM_USAGE_COMPLETION_TOKENS`) and older OpenLIT's output token count."""
LLM_USAGE_PROMPT_TOKENS: Final = "llm.usage.prompt_tokens"
"""The earliest OpenLLMetry releases' input token count (before the `gen_ai.` rename)."""
LLM_USAGE_COMPLETION_TOKENS: Final = "llm.usage.completion_tokens"
"""The earliest OpenLLMetry releases' output token count."""
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_OLD: Final = "gen_ai.usage.cache_read_input_tokens"
"""OpenLLMetry's cache-read count before v0.5 (semconv-ai `LLM_USAGE_CACHE_READ_INPUT_TOKENS`)."""
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_OLD: Final = "gen_ai.usage.cache_creation_input_tokens"
"""OpenLLMetry's cache-write count before v0.5 (semconv-ai `LLM_USAGE_CACHE_CREATION_INPUT_TOKENS`)."""
GEN_AI_USAGE_REASONING_TOKENS: Final = "gen_ai.usage.reasoning_tokens"
"""Reasoning tokens as OpenLLMetry v0.5 (`GEN_AI_USAGE_REASONING_TOKENS`) and OpenLIT spell them."""
LLM_USAGE_REASONING_TOKENS: Final = "llm.usage.reasoning_tokens"
"""Reasoning tokens as OpenLLMetry spelled them before v0.5 (`LLM_USAGE_REASONING_TOKENS`)."""
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"
"""OpenLIT's cost of the call in USD (`GEN_AI_USAGE_COST`), computed by OpenLIT from its own price list."""
GEN_AI_RESPONSE_SERVICE_TIER: Final = "gen_ai.response.service_tier"
"""OpenLIT's service tier that served the call (`GEN_AI_RESPONSE_SERVICE_TIER`)."""
LLM_REQUEST_TYPE: Final = "llm.request.type"
"""OpenLLMetry's kind of call (`LLM_REQUEST_TYPE`: chat, completion, embedding, rerank), the operation
name of spans that carry no `gen_ai.operation.name`; see `LLM_REQUEST_TYPES`."""
GEN_AI_PROMPT: Final = "gen_ai.prompt"
"""OpenLIT's prompt text (`GEN_AI_CONTENT_PROMPT`); content."""
GEN_AI_COMPLETION: Final = "gen_ai.completion"
"""OpenLIT's completion text (`GEN_AI_CONTENT_COMPLETION`); content."""
GEN_AI_CONTENT_REVISED_PROMPT: Final = "gen_ai.content.revised_prompt"
"""OpenLIT's revised image prompt (`GEN_AI_CONTENT_REVISED_PROMPT`); content."""

OLDER_CONTENT_ATTRIBUTES: Final = frozenset({GEN_AI_PROMPT, GEN_AI_COMPLETION, GEN_AI_CONTENT_REVISED_PROMPT})
"""Content attributes of older emitters, kept only when the user opts in (like `CONTENT_ATTRIBUTES`)."""

# --- spancost: collector ------------------------------------------------------------------------------

TRUNCATED_ATTRIBUTES: Final = "spancost.truncated"
"""Set by the collector on a span whose values it shortened to its size limit: the JSON list of what was
cut (`name`, `status.message`, an attribute key, `resource.<key>`, `events.<i>.<key>`, `links.<i>.<key>`)."""

# --- General conventions ----------------------------------------------------------------------------

ERROR_TYPE: Final = "error.type"
"""Class of the error a failed call ended with."""
SERVER_ADDRESS: Final = "server.address"
"""Host the SDK sent the request to."""
SERVER_PORT: Final = "server.port"
"""Port the SDK sent the request to."""
USER_ID: Final = "user.id"
"""The end user the call was made for."""
SERVICE_NAME: Final = "service.name"
"""Resource attribute: the application."""
SERVICE_VERSION: Final = "service.version"
"""Resource attribute: the application's version (the client version in reports)."""

# --- spancost: cost provenance ------------------------------------------------------------------

COST_STATUS: Final = "spancost.cost.status"
"""Whether the call could be priced: see `CostStatus`."""
COST_INPUT: Final = "spancost.cost.input"
"""USD for uncached input tokens."""
COST_OUTPUT: Final = "spancost.cost.output"
"""USD for output tokens (reasoning included)."""
COST_CACHE_READ: Final = "spancost.cost.cache_read"
"""USD for input tokens read from cache."""
COST_CACHE_WRITE: Final = "spancost.cost.cache_write"
"""USD for input tokens written to cache."""
PRICE_KEY: Final = "spancost.price.key"
"""The price-table entry that priced the call, as provider/model."""
PRICE_VERSION: Final = "spancost.price.version"
"""The date of the price table that priced the call."""
PRICE_TIER: Final = "spancost.price.tier"
"""Service tier and long-context tier the call was priced at."""

# --- spancost: attribution tags -------------------------------------------------------------------

PROMPT_NAME: Final = "spancost.prompt.name"
"""Name of the prompt (template) the call used."""
PROMPT_VERSION: Final = "spancost.prompt.version"
"""Version of the prompt; defaults to a short hash of the system prompt."""
PROMPT_SYSTEM_TOKENS: Final = "spancost.prompt.system_tokens"
"""An estimate (characters / 4) of the system prompt's size in tokens; recorded without its text."""
DUPLICATE_OF: Final = "spancost.duplicate_of"
"""On a span that was a second inference span for the same model call (two instrumentations saw it,
one inside the other): the span id of the one that counts. The duplicate is exported without its
operation name and usage, so that exactly one inference span per call reaches the exporter."""
WORKSPACE_ID: Final = "spancost.workspace.id"
"""Tenant, team or workspace the call was made for."""
FEATURE: Final = "spancost.feature"
"""Product feature that made the call."""
EXPERIMENT_VARIANT: Final = "spancost.experiment.variant"
"""A/B experiment arm the call ran under."""
ENTRY_POINT: Final = "spancost.entry_point"
"""Where in the application the user action started (endpoint, job, command)."""
RUN_ID: Final = "spancost.run.id"
"""Id of a golden-dataset run the call belongs to."""

# --- spancost: roll-up on agent and workflow spans -------------------------------------------------

ROLLUP_COST: Final = "spancost.rollup.cost"
"""USD of all inference calls under this agent or workflow span."""
ROLLUP_LLM_CALLS: Final = "spancost.rollup.llm_calls"
"""Number of inference calls under this agent or workflow span."""
ROLLUP_INPUT_TOKENS: Final = "spancost.rollup.input_tokens"
"""Input tokens of all inference calls under this span."""
ROLLUP_OUTPUT_TOKENS: Final = "spancost.rollup.output_tokens"
"""Output tokens of all inference calls under this span."""
ROLLUP_UNPRICED_CALLS: Final = "spancost.rollup.unpriced_calls"
"""Inference calls under this span whose model has no price (so `rollup.cost` leaves them out)."""

# --- spancost: quality results (record_eval) ---------------------------------------------------------

EVAL_PASSED: Final = "spancost.eval.passed"
"""Whether the run or call passed its check (boolean)."""
EVAL_SCORE: Final = "spancost.eval.score"
"""A quality score for the run or call (double)."""
EVAL_NAME: Final = "spancost.eval.name"
"""Which evaluation produced the result."""

# --- metrics --------------------------------------------------------------------------------------

METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
"""Histogram of tokens per call, by `gen_ai.token.type`."""
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
"""Histogram of call durations in seconds."""
METRIC_COST: Final = "spancost.client.cost"
"""Counter of USD spent on model calls (priced calls only)."""


class Operation(str, Enum):
    """Values of `gen_ai.operation.name` that spancost writes or prices."""

    CHAT = "chat"
    TEXT_COMPLETION = "text_completion"
    EMBEDDINGS = "embeddings"
    GENERATE_CONTENT = "generate_content"
    INVOKE_AGENT = "invoke_agent"
    EXECUTE_TOOL = "execute_tool"
    INVOKE_WORKFLOW = "invoke_workflow"


INFERENCE_OPERATIONS: Final = frozenset(
    {
        Operation.CHAT.value,
        Operation.TEXT_COMPLETION.value,
        Operation.EMBEDDINGS.value,
        Operation.GENERATE_CONTENT.value,
    }
)
"""Operations that are one model call, and so carry usage and cost."""


ROLLUP_OPERATIONS: Final = frozenset({Operation.INVOKE_AGENT.value, Operation.INVOKE_WORKFLOW.value})
"""Operations whose spans carry the roll-up of the model calls under them."""

LLM_REQUEST_TYPES: Final = {
    "chat": Operation.CHAT.value,
    "completion": Operation.TEXT_COMPLETION.value,
    "embedding": Operation.EMBEDDINGS.value,
}
"""`llm.request.type` values that are one model call → the `gen_ai.operation.name` they stand for."""


class CostStatus(str, Enum):
    """Values of `spancost.cost.status`."""

    PRICED = "priced"
    """Priced by spancost from the price table."""
    PROVIDER = "provider"
    """The cost came with the span (reported by the provider or the emitter)."""
    UNPRICED = "unpriced"
    """The model is not in the price table: no amount, which is not the same as free."""


class CostSource(str, Enum):
    """Values of `gen_ai.usage.cost.source`."""

    PROVIDER = "provider"
    LOCAL = "local"


TAG_ATTRIBUTES: Final = {
    "prompt": PROMPT_NAME,
    "prompt_version": PROMPT_VERSION,
    "user_id": USER_ID,
    "workspace_id": WORKSPACE_ID,
    "feature": FEATURE,
    "experiment_variant": EXPERIMENT_VARIANT,
    "entry_point": ENTRY_POINT,
    "run_id": RUN_ID,
}
"""Keyword of `spancost.tags(...)` → the attribute it sets on every span started inside."""
