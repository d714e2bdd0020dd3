"""The conversation tree, folded from channel messages (live or history, in any order).

Nodes are messages keyed by codec-message-id: user inputs (`ai-input` user-message parts) and
assistant messages (the `ai-output`s of a run). Each node hangs under its `parent` header;
nodes sharing a parent are siblings, ordered by channel serial: an edit (a new input with
`fork-of`) is a sibling of the input it edits, a regenerate (a run with `msg-regenerate`) gives
the assistant message a sibling. The messages of one run follow each other instead: a run that
answers in several messages (an agent loop's passes, a steer answered) and the user messages
steered into it form one thread in serial order, as the JS run node's messages do, with a
steer no output has answered yet at its end. Runs (turns) are tracked by run-id from their
lifecycle events; outputs of a run whose `ai-run-start` was not seen (a late joiner's first
page) synthesise the run from their headers. A View is one reader's branch selection over the
shared tree.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from channel_relay.client.codecs import vercel
from channel_relay.client.codecs.codec import (
    Codec,
    OutputDecoder,
    lifecycle_policy,
    stream_events,
)
from channel_relay.client.events import EventEmitter, Subscription
from channel_relay.client.message import Message
from channel_relay.client.turns.wire import (
    AI_CANCEL,
    AI_INPUT,
    AI_OUTPUT,
    RUN_END,
    RUN_RESUME,
    RUN_START,
    RUN_SUSPEND,
    STEP_END,
    STEP_START,
    codec_headers,
    transport_headers,
)
from channel_relay.protocol.actions import MessageAction

__all__ = ["Branch", "ConversationTree", "Node", "Pager", "Run", "Step", "View"]

_LAST = "~"  # sorts after every serial character: unsent (optimistic) nodes go last
ENDED = frozenset({"complete", "cancelled", "error"})


@dataclass(eq=False)
class Node:
    """A message in the tree. `message` is the domain message ({id, role, parts}; a UIMessage
    with the Vercel codec) its codec built so far; `messages` all the domain messages the node
    stands for (the JS `getMessages` of the node: one, unless the codec folds several)."""

    codec_message_id: str
    codec: Codec
    role: str
    parent: str | None = None
    # The parent header (`parent` is where the node hangs: within a run, the message before it).
    wire_parent: str | None = None
    fork_of: str | None = None
    serial: str | None = None
    client_id: str | None = None
    run_id: str | None = None
    regenerates: str | None = None
    # The step attempt the node's output was published in (its first output says).
    step_id: str | None = None
    step_start_serial: str | None = None
    _entries: dict[str, Any] = field(default_factory=dict, repr=False)
    # The events the codec's lifecycle puts before an output entry (by serial) of a run met
    # mid-way: what the reader never saw of the run's opening.
    _lead_ins: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _cache: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def messages(self) -> list[dict[str, Any]]:
        if self._cache is None:
            self._cache = self._build()
        return self._cache

    @property
    def message(self) -> dict[str, Any]:
        """The node's (last) message; an empty one while its codec has built none."""
        messages = self.messages
        if messages:
            return messages[-1]
        return self.codec.new_message(self.codec_message_id, self.role, [])

    @property
    def text(self) -> str:
        """The text parts of the message, joined."""
        return self.codec.text(self.message)

    def holds_tool_call(self, tool_call_id: str) -> bool:
        return any(self.codec.holds_tool_call(m, tool_call_id) for m in self.messages)

    def __post_init__(self) -> None:
        if self.wire_parent is None:
            self.wire_parent = self.parent

    def _build(self) -> list[dict[str, Any]]:
        entries = [self._entries[k] for k in sorted(self._entries)]
        if self.role == "user":
            message_id = next((e[2] for e in entries if e[0] == "part"), self.codec_message_id)
            parts = [e[1] for e in entries if e[0] == "part"]
            return [self.codec.new_message(message_id, "user", parts)]
        seeded = next((e[1] for e in entries if e[0] == "seed"), None)
        events: list[dict[str, Any]] = []
        for serial in sorted(self._entries):
            entry = self._entries[serial]
            events.extend(self._lead_ins.get(serial, ()))
            if entry[0] == "chunks":
                events.extend(entry[1])
            elif entry[0] == "stream":
                events.extend(stream_events(self.codec, entry[1]))
        messages = self.codec.fold(events, self.codec_message_id)
        if seeded is not None:
            first = messages[0]["parts"] if messages else []
            seed = {**seeded, "parts": [dict(p) for p in seeded["parts"]] + first}
            messages = [seed, *messages[1:]]
        for entry in entries:
            if entry[0] == "response":
                for message in messages:
                    self.codec.apply_input(message, entry[1], entry[2], entry[3])
        return messages


@dataclass(eq=False)
class Step:
    """A step of a run as the channel shows it (the JS `StepInfo`), after its canonical
    attempt: the one whose `ai-step-start` has the latest serial. `status`: active until that
    attempt's `ai-step-end`, then its reason (complete, failed, cancelled). `attempt_count`:
    the attempts seen (distinct step-start serials). `step_client_id`: from the canonical
    attempt's start, None until a start is seen."""

    step_id: str
    status: str = "active"
    attempt_count: int = 0
    step_client_id: str | None = None
    canonical_serial: str | None = None
    _started: bool = field(default=False, repr=False)
    _attempts: set[str] = field(default_factory=set, repr=False)
    _ends: dict[str, str] = field(default_factory=dict, repr=False)

    def _start(self, serial: str, step_client_id: str) -> bool:
        """Record an attempt's start; True when it became the canonical attempt."""
        self._add_attempt(serial)
        newer = not self._started or self.canonical_serial is None or serial > self.canonical_serial
        self._started = True
        if newer:
            self.canonical_serial = serial
            self.step_client_id = step_client_id
        self._settle()
        return newer

    def _end(self, start_serial: str, reason: str) -> None:
        self._add_attempt(start_serial)
        self._ends[start_serial] = reason
        self._settle()

    def _add_attempt(self, serial: str) -> None:
        self._attempts.add(serial)
        self.attempt_count = len(self._attempts)

    def _settle(self) -> None:
        canonical = self.canonical_serial
        self.status = self._ends.get(canonical, "active") if canonical is not None else "active"


@dataclass(eq=False)
class Run:
    """A turn on the wire. `status`: streaming, suspended, complete, cancelled, error.
    `client_id` is the run's owner (run-client-id). `synthesized`: known from its outputs only."""

    run_id: str
    client_id: str = ""
    status: str = "streaming"
    parent: str | None = None
    fork_of: str | None = None
    regenerates: str | None = None
    input_codec_message_id: str | None = None
    invocation_id: str | None = None
    serial: str | None = None
    synthesized: bool = False
    messages: list[str] = field(default_factory=list)
    error: dict[str, str] | None = None
    steers: dict[str, dict[str, Any]] = field(default_factory=dict)
    consumed_steers: set[str] = field(default_factory=set)
    superseded: bool = False
    _lifecycle_serial: str = ""
    _steps: dict[str, Step] = field(default_factory=dict, repr=False)

    @property
    def active(self) -> bool:
        return self.status == "streaming"

    @property
    def steps(self) -> list[Step]:
        """The run's steps, in the order the channel first showed them."""
        return list(self._steps.values())

    def supersedes(self, node: Node) -> bool:
        """Whether `node` is output of a step attempt a later attempt of its step replaced
        (readers leave it out)."""
        step = self._steps.get(node.step_id or "")
        canonical = step.canonical_serial if step is not None else None
        return (
            canonical is not None
            and node.step_start_serial is not None
            and node.step_start_serial != canonical
        )


class ConversationTree(EventEmitter):
    """All nodes and runs of one session. Events: "run" (run, kind) with kind start, resume,
    suspend or end; "chunks" (run, node, chunks) for live output; "input" (node); "invocation"
    (event-id, messages) once per input that arrives live and asks an agent for work (a user
    message, regenerate, approval or tool result; not a steer, not history); "step" (run, step)
    when a step starts or ends; "steer" (run,
    codec-message-id); "cancel" (transport headers); "active_turns" (mapping); "update" ().
    `codec` reads the content of the messages (the Vercel UIMessage codec by default)."""

    def __init__(self, codec: Codec = vercel.CODEC) -> None:
        super().__init__()
        self.codec = codec
        self.nodes: dict[str, Node] = {}
        self.runs: dict[str, Run] = {}
        self.inputs_by_event_id: dict[str, list[Message]] = {}
        self._children: dict[str | None, list[Node]] = {}
        self._decoder = OutputDecoder(codec)
        self._seen: set[str] = set()
        self._superseded: set[str] = set()
        self._active: dict[str, set[str]] = {}
        self.active_turns = MappingProxyType(self._active)

    # Folding messages

    def apply(self, message: Message, live: bool = True) -> None:
        """Fold one channel message into the tree (duplicates are ignored)."""
        transport = transport_headers(message)
        if not transport or not message.serial:
            return
        name = message.name
        if name == AI_OUTPUT:
            self._apply_output(message, transport, live)
            return
        if message.action != MessageAction.CREATE and name != AI_OUTPUT:
            return
        if message.serial in self._seen:
            return
        self._seen.add(message.serial)
        if name == AI_INPUT:
            self._apply_input(message, transport, live)
        elif name in (RUN_START, RUN_RESUME, RUN_SUSPEND, RUN_END):
            self._apply_lifecycle(message, transport)
        elif name in (STEP_START, STEP_END):
            self._apply_step(message, transport)
        elif name == AI_CANCEL:
            self.emit("cancel", transport, message)
        self.emit("update")

    def _apply_input(self, message: Message, transport: dict[str, str], live: bool) -> None:
        codec = codec_headers(message)
        event_id = transport.get("event-id")
        cmid = transport.get("codec-message-id")
        kind = codec.get("kind")
        steer = kind == "user-message" and "run-id" in transport
        if event_id:
            inputs = self.inputs_by_event_id.setdefault(event_id, [])
            inputs.append(message)
            if live and len(inputs) == 1 and not steer:
                self.emit("invocation", event_id, inputs)
        if not cmid:
            return
        if steer:
            self._apply_steer(message, transport, codec, cmid)
            return
        if transport.get("role") == "assistant" and "run-id" not in transport:
            self._apply_fork(message, transport, codec, cmid)
            return
        if kind == "user-message":
            node = self.nodes.get(cmid)
            if node is None:
                node = Node(
                    cmid,
                    self.codec,
                    transport.get("role", "user"),
                    parent=transport.get("parent"),
                    fork_of=transport.get("fork-of"),
                    serial=message.serial,
                    client_id=message.client_id,
                )
                self._add(node)
            elif message.serial and (node.serial is None or message.serial < node.serial):
                self._reorder(node, message.serial)
            part = self.codec.decode_input_part(message.data, codec)
            node._entries[message.serial or ""] = ("part", part, codec.get("messageId", cmid))
            node._cache = None
            self.emit("input", node)
        elif kind in ("tool-approval-response", "tool-result", "tool-result-error"):
            node = self.nodes.get(cmid)
            if node is not None:
                node._entries[message.serial or ""] = ("response", codec, kind, message.data)
                node._cache = None

    def _apply_steer(
        self, message: Message, transport: dict[str, str], codec: dict[str, str], cmid: str
    ) -> None:
        # A user message sent into a running turn: the agent folds it into the run it is
        # doing, so it is no branch of the conversation, it belongs to the run.
        run, _ = self._run(transport["run-id"], transport)
        part = self.codec.decode_input_part(message.data, codec)
        node = self.nodes.get(cmid)
        if node is None:
            node = Node(
                cmid,
                self.codec,
                "user",
                serial=message.serial,
                client_id=message.client_id,
                run_id=run.run_id,
            )
            # Placed by _thread, once the run's place in the tree is known.
            self.nodes[cmid] = node
        node._entries[message.serial or ""] = ("part", part, codec.get("messageId", cmid))
        node._cache = None
        run.steers[cmid] = node.message
        self._thread(run)
        self.emit("steer", run, cmid)

    def _apply_fork(
        self, message: Message, transport: dict[str, str], codec: dict[str, str], cmid: str
    ) -> None:
        # A client tool-result fork (published run-less with role assistant): the suspended
        # run it answers is superseded, and its messages, re-keyed with the tool result in
        # place, become a sibling branch the agent's new run continues.
        superseded = transport.get("supersedes")
        if superseded:
            self._superseded.add(superseded)
            if superseded in self.runs:
                self.runs[superseded].superseded = True
        seed = self.codec.fork_seed(message.data) or {"messages": []}
        parent = transport.get("parent")
        for entry in seed["messages"]:
            seeded = entry["codecMessageId"]
            if seeded not in self.nodes:
                node = Node(
                    seeded,
                    self.codec,
                    "assistant",
                    parent=parent,
                    serial=message.serial,
                    client_id=message.client_id,
                )
                node._entries[""] = ("seed", entry["message"])
                self._add(node)
            parent = seeded
        node = self.nodes.get(cmid)
        if node is not None:
            kind = codec.get("kind", "")
            node._entries[message.serial or ""] = ("response", codec, kind, message.data)
            node._cache = None

    def _apply_lifecycle(self, message: Message, transport: dict[str, str]) -> None:
        run_id = transport.get("run-id")
        if not run_id:
            return
        run, created = self._run(run_id, transport)
        name = message.name
        if name == RUN_START:
            run.synthesized = False
            run.serial = message.serial
            run.parent = transport.get("parent", run.parent)
            run.fork_of = transport.get("fork-of", run.fork_of)
            run.regenerates = transport.get("msg-regenerate", run.regenerates)
            self._thread(run)
        if transport.get("input-codec-message-id") and name in (RUN_START, RUN_RESUME):
            run.input_codec_message_id = transport["input-codec-message-id"]
        run.invocation_id = transport.get("invocation-id", run.invocation_id)
        # Pages may arrive newest first: only a later lifecycle event changes the status.
        serial = message.serial or ""
        if serial < run._lifecycle_serial:
            if created:
                self.emit("run", run, "start")
            return
        run._lifecycle_serial = serial
        kind = {RUN_START: "start", RUN_RESUME: "resume", RUN_SUSPEND: "suspend", RUN_END: "end"}[
            name
        ]
        if kind == "end":
            run.status = transport.get("run-reason", "complete")
            if run.status == "error":
                run.error = {
                    "code": transport.get("error-code", ""),
                    "message": transport.get("error-message", ""),
                }
        elif kind == "suspend":
            run.status = "suspended"
        else:
            run.status = "streaming"
        self._update_active(run)
        self.emit("run", run, kind)

    def _apply_step(self, message: Message, transport: dict[str, str]) -> None:
        run_id, step_id = transport.get("run-id"), transport.get("step-id")
        start_serial = transport.get("step-start-serial")
        if not run_id or not step_id or (message.name == STEP_END and not start_serial):
            return
        run, created = self._run(run_id, transport)
        if created:
            run.synthesized = True
            self._update_active(run)
            self.emit("run", run, "start")
        step = run._steps.get(step_id)
        if step is None:
            step = run._steps[step_id] = Step(step_id)
        if message.name == STEP_START:
            if step._start(message.serial or "", transport.get("step-client-id", "")):
                # A retry: the earlier attempt's output leaves every view.
                self._thread(run)
        else:
            step._end(start_serial or "", transport.get("step-reason", "complete"))
        self.emit("step", run, step)

    def _apply_output(self, message: Message, transport: dict[str, str], live: bool) -> None:
        codec = codec_headers(message)
        serial = message.serial or ""
        is_stream = transport.get("stream") == "true"
        if not is_stream:
            if serial in self._seen or message.action != MessageAction.CREATE:
                return
            self._seen.add(serial)
        run_id = transport.get("run-id", "")
        run, created = self._run(run_id, transport)
        consumed = set(_steer_ids(transport)) - run.consumed_steers
        run.consumed_steers.update(consumed)
        if created:
            run.synthesized = True
            self._update_active(run)
            self.emit("run", run, "start")
        cmid = transport.get("codec-message-id", "")
        node = self.nodes.get(cmid)
        if node is None:
            node = Node(
                cmid,
                self.codec,
                "assistant",
                parent=transport.get("parent"),
                fork_of=transport.get("fork-of"),
                serial=serial,
                client_id=transport.get("run-client-id"),
                run_id=run_id,
                regenerates=transport.get("msg-regenerate"),
                step_id=transport.get("step-id"),
                step_start_serial=transport.get("step-start-serial"),
            )
            self._add(node)
            run.messages.append(cmid)
            self._thread(run)
        elif serial < (node.serial or _LAST):
            self._reorder(node, serial)
            self._thread(run)
        elif consumed:
            self._thread(run)
        chunks = self._decoder.decode(
            serial,
            message.version_serial or serial,
            message.action == MessageAction.APPEND,
            message.data,
            transport,
            codec,
        )
        first_sight = serial not in node._entries
        stream = self._decoder.streams.get(serial) if is_stream else None
        if stream is not None:
            node._entries[serial] = ("stream", stream)
        elif chunks:
            # The kind a discrete output's lifecycle repair goes by (none for a stream of a
            # kind the codec does not stream: the SDK's decoder repairs none of those).
            kind = None if is_stream else codec.get("kind", "")
            node._entries[serial] = ("chunks", chunks, kind, codec)
        node._cache = None
        if first_sight and serial in node._entries:
            self._repair(run)
            chunks = node._lead_ins.get(serial, []) + chunks
        self._route_tool_results(run, node, serial, chunks)
        if chunks and not run.supersedes(node):
            self.emit("chunks", run, node, chunks)
            self.emit("update")

    def _repair(self, run: Run) -> None:
        """Derive again, in serial order over the whole run, the events the codec's lifecycle
        puts before each output (the JS decoder's repair of a run met mid-way, made as it
        meets messages). Redone from the start because history comes newest page first: once
        an older page brings the run's real opening, nothing is synthesised any more."""
        policy = lifecycle_policy(self.codec)
        if policy is None:
            return
        outputs = [
            (serial, node, entry)
            for node in (self.nodes.get(cmid) for cmid in run.messages)
            if node is not None
            for serial, entry in node._entries.items()
            if entry[0] in ("chunks", "stream")
        ]
        outputs.sort(key=lambda output: output[0])
        for serial, node, entry in outputs:
            if entry[0] == "stream":
                lead_in = policy.stream_lead_in(run.run_id, entry[1].codec)
            elif entry[2] is not None:
                lead_in = policy.discrete_lead_in(entry[2], run.run_id, entry[3])
            else:
                lead_in = []
            if node._lead_ins.get(serial, []) != lead_in:
                if lead_in:
                    node._lead_ins[serial] = lead_in
                else:
                    del node._lead_ins[serial]
                node._cache = None

    def _route_tool_results(
        self, run: Run, node: Node, serial: str, chunks: list[dict[str, Any]]
    ) -> None:
        # A resumed run answers a tool call in a new assistant message; the result belongs to
        # the part that holds the call, in the earlier message of the same run.
        for call, kind, data in self.codec.tool_outputs(chunks):
            if node.holds_tool_call(call):
                continue
            for cmid in reversed(run.messages):
                target = self.nodes.get(cmid)
                if target is None or target is node:
                    continue
                if target.holds_tool_call(call):
                    target._entries[serial] = ("response", {"toolCallId": call}, kind, data)
                    target._cache = None
                    break

    def _run(self, run_id: str, transport: dict[str, str]) -> tuple[Run, bool]:
        run = self.runs.get(run_id)
        if run is not None:
            return run, False
        run = Run(
            run_id,
            superseded=run_id in self._superseded,
            client_id=transport.get("run-client-id", ""),
            parent=transport.get("parent"),
            fork_of=transport.get("fork-of"),
            regenerates=transport.get("msg-regenerate"),
            input_codec_message_id=transport.get("input-codec-message-id"),
            invocation_id=transport.get("invocation-id"),
        )
        self.runs[run_id] = run
        return run, True

    def _update_active(self, run: Run) -> None:
        owner = self._active.get(run.client_id)
        if run.active:
            self._active.setdefault(run.client_id, set()).add(run.run_id)
        elif owner is not None and run.run_id in owner:
            owner.discard(run.run_id)
            if not owner:
                del self._active[run.client_id]
        else:
            return
        self.emit("active_turns", self.active_turns)

    # Structure

    def _add(self, node: Node) -> None:
        self.nodes[node.codec_message_id] = node
        siblings = self._children.setdefault(node.parent, [])
        siblings.append(node)
        siblings.sort(key=_order)

    def _reorder(self, node: Node, serial: str) -> None:
        node.serial = serial
        self._children[node.parent].sort(key=_order)

    def _thread(self, run: Run) -> None:
        # The run's messages and steers in serial order (an unanswered steer last), each under
        # the one before; the first hangs where the run's first assistant message says.
        members = [self.nodes[c] for c in (*run.messages, *run.steers) if c in self.nodes]
        for node in [n for n in members if run.supersedes(n)]:
            members.remove(node)
            if node in self._children.get(node.parent, ()):
                self._children[node.parent].remove(node)
        members.sort(key=lambda n: (_unanswered(run, n), _order(n)))
        answers = sorted((n for n in members if n.role == "assistant"), key=_order)
        if not answers and run.parent is None:
            return
        parent = answers[0].wire_parent if answers else run.parent
        for node in members:
            placed = node in self._children.get(node.parent, ())
            if node.parent != parent or not placed:
                if placed:
                    self._children[node.parent].remove(node)
                node.parent = parent
                siblings = self._children.setdefault(parent, [])
                siblings.append(node)
                siblings.sort(key=_order)
            parent = node.codec_message_id

    def children(self, parent: str | None) -> list[Node]:
        """The nodes under `parent` (None: the roots), oldest first. The messages of a run a
        client tool-result fork superseded are left out: the fork replaces them."""
        return [
            node
            for node in self._children.get(parent, ())
            if node.run_id is None or node.run_id not in self._superseded
        ]

    def siblings(self, codec_message_id: str) -> list[Node]:
        node = self.nodes[codec_message_id]
        return self.children(node.parent)


def _steer_ids(transport: dict[str, str]) -> list[str]:
    """The steer inputs an agent output says it consumed (a JSON array of codec-message-ids)."""
    raw = transport.get("steer-codec-message-ids")
    if raw is None:
        return []
    try:
        ids = json.loads(raw)
    except ValueError:
        return []
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


def _unanswered(run: Run, node: Node) -> bool:
    cmid = node.codec_message_id
    return cmid in run.steers and cmid not in run.consumed_steers


def _order(node: Node) -> str:
    return node.serial or _LAST


class Branch:
    """The siblings at one point of a view's conversation, and which one the view shows."""

    def __init__(self, view: View, parent: str | None) -> None:
        self._view, self._parent = view, parent
        self.siblings = view.tree.children(parent)
        chosen = view._chosen(parent, self.siblings)
        self.index = self.siblings.index(chosen) if chosen in self.siblings else -1

    @property
    def has_siblings(self) -> bool:
        return len(self.siblings) > 1

    def select(self, index: int) -> None:
        """Show sibling `index` (and, below it, the newest branch unless chosen otherwise)."""
        self._view.selection[self._parent] = self.siblings[index].codec_message_id
        self.index = index
        # What the view shows changed: wake its sync() subscribers.
        self._view.tree.emit("update")


class Pager(Protocol):
    """Where a view loads older history from (its Session)."""

    def has_older(self) -> bool: ...

    async def load_older(self) -> bool: ...


class View:
    """One reader's selection of branches over the shared tree. By default every branch point
    shows its newest sibling; `branch(id).select(i)` pins another one for this view only."""

    def __init__(self, tree: ConversationTree, pager: Pager | None = None) -> None:
        self.tree = tree
        self.selection: dict[str | None, str] = {}
        self._pager = pager

    def _chosen(self, parent: str | None, siblings: list[Node]) -> Node | None:
        wanted = self.selection.get(parent)
        for node in siblings:
            if node.codec_message_id == wanted:
                return node
        return siblings[-1] if siblings else None

    def nodes(self) -> list[Node]:
        """The visible conversation, root first."""
        out: list[Node] = []
        parent: str | None = None
        seen: set[str] = set()
        while True:
            node = self._chosen(parent, self.tree.children(parent))
            if node is None or node.codec_message_id in seen:
                return out
            seen.add(node.codec_message_id)
            out.append(node)
            parent = node.codec_message_id

    def messages(self) -> list[dict[str, Any]]:
        """The visible conversation as UIMessages (every message of each node shown)."""
        return [message for node in self.nodes() for message in node.messages]

    def conversation(self) -> list[dict[str, str]]:
        """[{role, text}] of the visible conversation (handy for tests and logs)."""
        return [{"role": node.role, "text": node.text} for node in self.nodes()]

    def last(self) -> Node | None:
        nodes = self.nodes()
        return nodes[-1] if nodes else None

    def branch(self, codec_message_id: str) -> Branch:
        """The branch point holding `codec_message_id` and its siblings."""
        return Branch(self, self.tree.nodes[codec_message_id].parent)

    def follow(self, codec_message_id: str) -> None:
        """Select the branch that leads to `codec_message_id`."""
        node = self.tree.nodes.get(codec_message_id)
        while node is not None:
            self.selection[node.parent] = node.codec_message_id
            node = self.tree.nodes.get(node.parent) if node.parent else None

    def on_change(self, callback: Callable[[], Any]) -> Callable[[], None]:
        return self.tree.on("update", callback)

    def runs(self) -> list[Run]:
        """The turns whose messages this view shows, oldest first."""
        out: list[Run] = []
        for node in self.nodes():
            run = self.tree.runs.get(node.run_id or "")
            if run is not None and run not in out:
                out.append(run)
        return out

    def run_of(self, codec_message_id: str) -> Run | None:
        """The turn a message belongs to; for a user message, the turn answering it that this
        view shows. None if there is none (yet)."""
        node = self.tree.nodes.get(codec_message_id)
        if node is None:
            return None
        if node.run_id is None:
            shown = self._chosen(codec_message_id, self.tree.children(codec_message_id))
            node = shown if shown is not None and shown.run_id is not None else None
        return self.tree.runs.get(node.run_id or "") if node is not None else None

    def has_older(self) -> bool:
        """Whether older history remains to load into this view's tree."""
        return self._pager is not None and self._pager.has_older()

    async def load_older(self) -> list[dict[str, Any]]:
        """Load one older history page; returns the messages that became visible in this view
        (oldest first), empty when none did or there was no older page."""
        if self._pager is None:
            return []
        before = {node.codec_message_id for node in self.nodes()}
        await self._pager.load_older()
        return [m for n in self.nodes() if n.codec_message_id not in before for m in n.messages]

    def sync(self) -> Subscription[list[dict[str, Any]]]:
        """What a chat UI renders (the JS useMessageSync): the visible messages now, then again
        each time they change (new text, a new message, another branch selected in the tree).
        Close the subscription to stop."""
        subscription: Subscription[list[dict[str, Any]]] = Subscription()
        last: list[dict[str, Any]] | None = None

        def push() -> None:
            nonlocal last
            messages = copy.deepcopy(self.messages())
            if messages != last:
                last = messages
                subscription.push(messages)

        off = self.tree.on("update", push)
        subscription._on_close = off
        push()
        return subscription
