"""The demo's simulated product: a support desk with LLM features, used by a few workspaces for a month.

Every user action is one function here that calls the real `openai` and `anthropic` SDKs the way an
application would, inside `spancost.tags(...)`. The plan (which action, when, by whom) is drawn
from a seeded RNG, so a run is reproducible:

- `summarize-ticket` (feature summarize): gpt-4o-mini, or gpt-4.1-mini for experiment variant B;
- `draft-reply` (feature reply): claude-sonnet-4-5 with a cached system prompt, edited (longer)
  ten days before the end, so its cost per call steps up;
- `classify-intent` (feature triage): gpt-4.1-nano, one-word answers; a few calls go to a
  fine-tuned model the price table does not know (shown as unpriced, not as $0);
- `research-agent` (feature research): an agent run (`spancost.agent`) that plans with gpt-5-mini
  (reasoning tokens), runs 2-5 `web-search` tool steps (`spancost.tool`) that each call
  claude-haiku-4-5, and writes up with claude-sonnet-4-5; its span carries the run's rolled-up
  cost. One day it runs away and loops fifteen times.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import spancost

WORKSPACES = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka")
_WORDS = (
    "order",
    "refund",
    "shipping",
    "account",
    "password",
    "invoice",
    "billing",
    "delay",
    "broken",
    "replacement",
    "warranty",
    "customer",
    "support",
    "ticket",
    "escalation",
    "priority",
    "subscription",
    "cancel",
    "upgrade",
    "login",
    "error",
    "payment",
    "address",
    "delivery",
    "tracking",
    "damaged",
    "missing",
    "charge",
    "credit",
    "discount",
    "feedback",
    "urgent",
)


@dataclass(frozen=True)
class Action:
    """One user action: what, when (simulated time), by whom."""

    kind: str
    at: dt.datetime
    workspace: str
    user: str
    variant: str
    runaway: bool = False


def _text(rng: random.Random, tokens: int) -> str:
    # About four characters per token, as the fake provider counts them.
    return " ".join(rng.choice(_WORDS) for _ in range(max(1, int(tokens * 0.7))))


def _system_prompt(name: str, tokens: int) -> str:
    """The same text for the same name and size: one prompt version per edit."""
    rng = random.Random(f"{name}/{tokens}")
    return f"You are the {name} assistant. " + _text(rng, tokens)


def plan(days: int, actions: int, seed: int, now: dt.datetime) -> list[Action]:
    """`actions` user actions spread over the last `days` days: weekdays busier, usage growing,
    business hours, a few big workspaces and many small ones."""
    rng = random.Random(seed)
    start = (now - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day_weights = []
    for d in range(days):
        day = start + dt.timedelta(days=d)
        weekday = 0.35 if day.weekday() >= 5 else 1.0
        day_weights.append(weekday * (1 + 0.025 * d))
    workspace_weights = [1 / (i + 1) ** 1.1 for i in range(len(WORKSPACES))]
    users = {
        ws: [f"{ws}-u{n:02d}" for n in range(3 + int(12 * w))]
        for ws, w in zip(WORKSPACES, workspace_weights, strict=True)
    }
    runaway_day = rng.randrange(days // 2, days - 1) if days > 3 else -1
    kinds = ("summarize", "reply", "triage", "research")
    kind_weights = (0.34, 0.26, 0.28, 0.12)
    result = []
    for _ in range(actions):
        d = rng.choices(range(days), day_weights)[0]
        hour = min(23, max(0, int(rng.gauss(14, 3.5))))
        at = start + dt.timedelta(days=d, hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))
        if at > now:
            at = now - dt.timedelta(minutes=rng.randrange(1, 120))
        workspace = rng.choices(WORKSPACES, workspace_weights)[0]
        kind = rng.choices(kinds, kind_weights)[0]
        result.append(
            Action(
                kind=kind,
                at=at,
                workspace=workspace,
                user=rng.choice(users[workspace]),
                variant=rng.choice("AB"),
                runaway=kind == "research" and d == runaway_day and rng.random() < 0.5,
            )
        )
    result.sort(key=lambda a: a.at)
    return result


class Workload:
    """Runs actions against the SDK clients; every model call goes through the real SDKs."""

    def __init__(
        self, openai_client: Any, anthropic_client: Any, seed: int, prompt_edit_at: dt.datetime
    ) -> None:
        self.openai = openai_client
        self.anthropic = anthropic_client
        self.rng = random.Random(seed + 1)
        self.prompt_edit_at = prompt_edit_at
        self.failures = 0

    def run(self, action: Action) -> None:
        handlers: dict[str, Callable[[Action], None]] = {
            "summarize": self.summarize,
            "reply": self.reply,
            "triage": self.triage,
            "research": self.research,
        }
        with spancost.tags(
            user_id=action.user, workspace_id=action.workspace, entry_point=f"/api/{action.kind}"
        ):
            try:
                handlers[action.kind](action)
            except Exception:
                # A provider error the SDK gave up retrying: the app shows an error; the span recorded it.
                self.failures += 1

    def summarize(self, action: Action) -> None:
        model = "gpt-4o-mini" if action.variant == "A" else "gpt-4.1-mini"
        ticket = _text(self.rng, int(self.rng.lognormvariate(math.log(700), 0.7)))
        with spancost.tags(prompt="summarize-ticket", feature="summarize", experiment_variant=action.variant):
            self.openai.chat.completions.create(
                model=model,
                max_tokens=300,
                messages=[
                    {"role": "system", "content": _system_prompt("summarize", 450)},
                    {"role": "user", "content": f"Summarize this ticket:\n{ticket}"},
                ],
            )

    def reply(self, action: Action) -> None:
        edited = action.at >= self.prompt_edit_at
        system = _system_prompt("reply", 3200 if edited else 2000)
        thread = _text(self.rng, int(self.rng.lognormvariate(math.log(900), 0.6)))
        with spancost.tags(prompt="draft-reply", feature="reply"):
            self.anthropic.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=800,
                system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": f"Draft a reply to this thread:\n{thread}"}],
            )

    def triage(self, action: Action) -> None:
        model = "acme-intent-ft-3" if self.rng.random() < 0.03 else "gpt-4.1-nano"
        ticket = _text(self.rng, int(self.rng.lognormvariate(math.log(250), 0.5)))
        with spancost.tags(prompt="classify-intent", feature="triage"):
            self.openai.chat.completions.create(
                model=model,
                max_tokens=5,
                messages=[
                    {"role": "system", "content": _system_prompt("triage", 150)},
                    {"role": "user", "content": f"Answer in one word: the intent of {ticket}"},
                ],
            )

    def research(self, action: Action) -> None:
        steps = 15 if action.runaway else self.rng.randint(2, 5)
        question = _text(self.rng, int(self.rng.lognormvariate(math.log(120), 0.4)))
        with spancost.tags(feature="research"), spancost.agent("research-agent"):
            with spancost.tags(prompt="research-plan"):
                self.openai.chat.completions.create(
                    model="gpt-5-mini",
                    messages=[
                        {"role": "developer", "content": _system_prompt("planner", 400)},
                        {"role": "user", "content": f"Plan research steps for: {question}"},
                    ],
                )
            notes: list[str] = []
            for _ in range(steps):
                notes.append(self._research_step(question, notes))
            with spancost.tags(prompt="research-writeup"):
                self.anthropic.messages.create(
                    model="claude-sonnet-4-5",
                    max_tokens=1200,
                    system=_system_prompt("writer", 500),
                    messages=[{"role": "user", "content": "Write up these findings:\n" + "\n".join(notes)}],
                )

    @spancost.tool("web-search")
    def _research_step(self, question: str, notes: Sequence[str]) -> str:
        with spancost.tags(prompt="research-step"):
            message = self.anthropic.messages.create(
                model="claude-haiku-4-5",
                max_tokens=500,
                system=_system_prompt("researcher", 300),
                messages=[{"role": "user", "content": f"Find facts about: {question} {' '.join(notes)}"}],
            )
        return message.content[0].text[:200] if message.content else ""
