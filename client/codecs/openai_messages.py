"""OpenAI Responses messages: the reducer folding a node's decoded events into them, and the
readers over a conversation of them, as @ably/ai-transport 0.8.0's `ResponsesCodec` reducer
(`fold` / `getMessages`), `toResponsesInput` and its call correlation helpers.

A message is {role, items, toolCallStates?}: `items` are OpenAI Responses items (output
`message`, `reasoning`, `function_call` items folded from the stream, `function_call_output`
items, a user's input `message`), each valid Responses input as it stands. `toolCallStates`
(per call_id: approval pending / approved / denied, result ok / failed, the gated call's name,
arguments and reason) holds what OpenAI's items cannot say, and is present only when a call
has any.

Every event routes to the message its codec-message-id names (each agent `pipe` makes one);
a server tool's `function_call_output` lands in the message that published it, so a call and
its output may sit in different messages: pair them by `call_id`, as the helpers do.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DENIED_TOOL_OUTPUT",
    "Projection",
    "approved_unexecuted_calls",
    "resolved_call_ids",
    "to_responses_input",
    "unanswered_calls",
]

Item = dict[str, Any]
OpenAIMessage = dict[str, Any]

# The output a denied approval folds when the client gives no reason (the JS text).
DENIED_TOOL_OUTPUT = "Tool execution was not approved."
_MODELLED_ITEMS = ("message", "reasoning", "function_call")
# The item type a content part's slot belongs to.
_PART_HOLDERS = {"output_text": "message", "refusal": "message", "reasoning_text": "reasoning"}
# Streamed closes and deltas: event type -> (item type, slot list, part type, text key, done?).
_SLOT_EVENTS: dict[str, tuple[str, str, str | None, str, bool]] = {
    "response.output_text.delta": ("message", "content", "output_text", "text", False),
    "response.output_text.done": ("message", "content", "output_text", "text", True),
    "response.refusal.delta": ("message", "content", "refusal", "refusal", False),
    "response.refusal.done": ("message", "content", "refusal", "refusal", True),
    "response.reasoning_text.delta": ("reasoning", "content", "reasoning_text", "text", False),
    "response.reasoning_text.done": ("reasoning", "content", "reasoning_text", "text", True),
    "response.reasoning_summary_text.delta": ("reasoning", "summary", None, "text", False),
    "response.reasoning_summary_text.done": ("reasoning", "summary", None, "text", True),
}


@dataclass(slots=True)
class _Entry:
    codec_message_id: str
    message: OpenAIMessage
    by_item_id: dict[str, Item] = field(default_factory=dict)
    tool_states: dict[str, dict[str, Any]] = field(default_factory=dict)

    def merge_tool_state(self, call_id: str, **patch: Any) -> None:
        # A fresh dict each time: a state handed out by an earlier `messages()` never changes.
        self.tool_states[call_id] = {**self.tool_states.get(call_id, {}), **patch}

    def upsert_output(self, item: Item) -> None:
        # Client resolutions of one call replace each other (last wins): two outputs for one
        # call_id would make the next Responses request invalid.
        items = self.message["items"]
        for i, existing in enumerate(items):
            if existing.get("type") == "function_call_output" and existing.get(
                "call_id"
            ) == item.get("call_id"):
                items[i] = item
                return
        items.append(item)


class Projection:
    """One conversation node's messages in progress, keyed by codec-message-id (JS
    `OpenAIProjection` with `fold` and `getMessages`).

    It folds any serial-ordered subsequence of the node's events: a late joiner's suffix, or
    history paged in. An event for an item or slot it has not seen is skipped; a message exists
    only once an event adds something to it.
    """

    def __init__(self) -> None:
        self._entries: list[_Entry] = []

    def _find(self, codec_message_id: str) -> _Entry | None:
        return next((e for e in self._entries if e.codec_message_id == codec_message_id), None)

    def _ensure(self, role: str, codec_message_id: str) -> _Entry:
        entry = self._find(codec_message_id)
        if entry is None:
            entry = _Entry(codec_message_id, {"role": role, "items": []})
            self._entries.append(entry)
        return entry

    def _item(self, codec_message_id: str, item_id: Any) -> Item | None:
        entry = self._find(codec_message_id)
        return entry.by_item_id.get(item_id) if entry is not None else None

    def fold_output(self, event: dict[str, Any], codec_message_id: str | None) -> None:
        """Fold one agent output event (a Responses stream event, `function_call_output` or
        `tool-approval-request`) into the message `codec_message_id` names."""
        if codec_message_id is None:
            return
        kind = event.get("type")
        if kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") not in _MODELLED_ITEMS:
                return
            entry = self._ensure("assistant", codec_message_id)
            item_id = item.get("id")
            # A late joiner's decoder synthesises the item again: the first add wins.
            if item_id is not None and item_id in entry.by_item_id:
                return
            item = copy.deepcopy(item)
            entry.message["items"].append(item)
            if item_id is not None:
                entry.by_item_id[item_id] = item
        elif kind == "response.output_item.done":
            self._finish(event.get("item") or {}, codec_message_id)
        elif kind == "response.content_part.added":
            item = self._item(codec_message_id, event.get("item_id"))
            part = event.get("part") or {}
            holds = _PART_HOLDERS.get(part.get("type"))
            if item is not None and item.get("type") == holds:
                content = item.setdefault("content", [])
                _put(content, event.get("content_index"), copy.deepcopy(part))
        elif kind == "response.reasoning_summary_part.added":
            item = self._item(codec_message_id, event.get("item_id"))
            if item is not None and item.get("type") == "reasoning":
                text = (event.get("part") or {}).get("text")
                summary = {"type": "summary_text", "text": text}
                _put(item.setdefault("summary", []), event.get("summary_index"), summary)
        elif kind in _SLOT_EVENTS:
            item_type, slots, part_type, key, done = _SLOT_EVENTS[kind]
            item = self._item(codec_message_id, event.get("item_id"))
            index_key = "summary_index" if slots == "summary" else "content_index"
            part = _slot(item, item_type, slots, event.get(index_key), part_type)
            if part is not None:
                part[key] = event.get(key) if done else part.get(key, "") + event.get("delta", "")
        elif kind in (
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
        ):
            item = self._item(codec_message_id, event.get("item_id"))
            if item is None or item.get("type") != "function_call":
                return
            if kind.endswith(".done"):
                item["arguments"] = event.get("arguments")
            else:
                item["arguments"] = item.get("arguments", "") + event.get("delta", "")
        elif kind == "function_call_output":
            # A server tool's result stays in the message that published it (no call_id scan,
            # unlike the Vercel codec): readers pair it with its call by call_id.
            entry = self._ensure("assistant", codec_message_id)
            entry.message["items"].append(copy.deepcopy(event.get("item")))
        elif kind == "tool-approval-request":
            entry = self._ensure("assistant", codec_message_id)
            entry.merge_tool_state(
                event.get("call_id", ""),
                approval="pending",
                name=event.get("name"),
                arguments=event.get("arguments"),
            )

    def _finish(self, done: Item, codec_message_id: str) -> None:
        # The wire's done item is lean (id, type, status, a reasoning item's encrypted_content,
        # a message's logprobs): the content came on the streams, so finalise in place.
        if done.get("id") is None:
            return
        existing = self._item(codec_message_id, done["id"])
        if existing is None or existing.get("type") != done.get("type"):
            return
        # JS assigns `done.status` as it is: an absent status leaves none.
        if done.get("status") is None:
            existing.pop("status", None)
        else:
            existing["status"] = done["status"]
        if done["type"] == "message":
            for index, part in enumerate(done.get("content") or []):
                slot = existing["content"][index] if index < len(existing["content"]) else None
                has_logprobs = part.get("type") == "output_text" and "logprobs" in part
                if has_logprobs and slot is not None and slot.get("type") == "output_text":
                    slot["logprobs"] = part["logprobs"]
        elif done["type"] == "reasoning" and isinstance(done.get("encrypted_content"), str):
            existing["encrypted_content"] = done["encrypted_content"]

    def fold_input(self, event: dict[str, Any], codec_message_id: str | None) -> None:
        """Fold one client input (user-message, tool-result, tool-result-error,
        tool-approval-response; as `openai.decode_input` gives them) into the message
        `codec_message_id` names. A regenerate folds to nothing."""
        if codec_message_id is None:
            return
        kind = event.get("kind")
        if kind == "user-message":
            message = event.get("message") or {}
            entry = self._ensure(message.get("role", "user"), codec_message_id)
            entry.message["role"] = message.get("role", "user")
            _merge_user_items(entry.message["items"], message.get("items") or [])
        elif kind in ("tool-result", "tool-result-error", "tool-approval-response"):
            fold_tool_input(self._ensure("assistant", codec_message_id), kind, event["payload"])

    def messages(self) -> list[tuple[str, OpenAIMessage]]:
        """(codec-message-id, message) of every message, in publication order. A slot list
        with a gap (a later part seen before an earlier one) shows its prefix before the gap."""
        out = []
        for entry in self._entries:
            message = {**entry.message, "items": [_compact(i) for i in entry.message["items"]]}
            if entry.tool_states:
                message["toolCallStates"] = dict(entry.tool_states)
            out.append((entry.codec_message_id, message))
        return out


def fold_tool_input(entry: _Entry, kind: str, payload: dict[str, Any]) -> None:
    call_id = payload.get("call_id", "")
    if kind == "tool-result":
        item: Item = {"type": "function_call_output", "call_id": call_id}
        if "output" in payload:
            item["output"] = payload["output"]
        entry.upsert_output(item)
        entry.merge_tool_state(call_id, result="ok")
    elif kind == "tool-result-error":
        output = payload.get("message")
        entry.upsert_output({"type": "function_call_output", "call_id": call_id, "output": output})
        entry.merge_tool_state(call_id, result="failed")
    else:
        reason = {"reason": payload["reason"]} if payload.get("reason") is not None else {}
        if payload.get("approved"):
            entry.merge_tool_state(call_id, approval="approved", **reason)
        else:
            output = DENIED_TOOL_OUTPUT if payload.get("reason") is None else payload["reason"]
            entry.upsert_output(
                {"type": "function_call_output", "call_id": call_id, "output": output}
            )
            entry.merge_tool_state(call_id, approval="denied", **reason)


def apply_tool_input(message: OpenAIMessage, kind: str, payload: dict[str, Any]) -> None:
    """Fold a client's tool input into `message` (the message holding the call) in place."""
    entry = _Entry("", message, tool_states=dict(message.pop("toolCallStates", {})))
    fold_tool_input(entry, kind, payload)
    if entry.tool_states:
        message["toolCallStates"] = entry.tool_states


def _merge_user_items(items: list[Item], incoming: list[Item]) -> None:
    # A user message is one input message item: each wire part adds its content to it.
    target = next((i for i in items if _is_input_message(i)), None)
    for item in incoming:
        if not _is_input_message(item):
            continue
        if target is None:
            target = copy.deepcopy(item)
            items.append(target)
        else:
            target["content"].extend(copy.deepcopy(item["content"]))


def _is_input_message(item: Item) -> bool:
    return item.get("type") == "message" and isinstance(item.get("content"), list)


def _put(slots: list[Any], index: Any, value: Any) -> None:
    """JS `slots[index] = value`: a later index leaves a gap (None) to fill later."""
    if not isinstance(index, int) or index < 0:
        return
    if index >= len(slots):
        slots.extend([None] * (index + 1 - len(slots)))
    slots[index] = value


def _slot(
    item: Item | None, item_type: str, slots: str, index: Any, part_type: str | None
) -> dict[str, Any] | None:
    if item is None or item.get("type") != item_type or not isinstance(index, int):
        return None
    parts = item.get(slots) or []
    part = parts[index] if 0 <= index < len(parts) else None
    if part is None or (part_type is not None and part.get("type") != part_type):
        return None
    return part


def _dense(slots: list[Any]) -> list[Any]:
    end = next((i for i, slot in enumerate(slots) if slot is None), len(slots))
    return slots if end == len(slots) else slots[:end]


def _compact(item: Item) -> Item:
    if item.get("type") == "reasoning":
        summary = _dense(item.get("summary") or [])
        content = item.get("content")
        dense = None if content is None else _dense(content)
        if summary is item.get("summary") and dense is content:
            return item
        out = {**item, "summary": summary}
        if dense is not None:
            out["content"] = dense
        return out
    if item.get("type") == "message" and "id" in item:
        content = _dense(item.get("content") or [])
        return item if content is item.get("content") else {**item, "content": content}
    return item


# Readers over a conversation


def to_responses_input(messages: Iterable[OpenAIMessage]) -> list[Item]:
    """The `input` list of an OpenAI Responses request continuing `messages` (a view's
    messages, root first): their items, in order. `toolCallStates` stays out."""
    return [item for message in messages for item in message.get("items", [])]


def resolved_call_ids(messages: Iterable[OpenAIMessage]) -> set[str]:
    """The call_ids that have a `function_call_output` anywhere in `messages`."""
    return {
        item.get("call_id", "")
        for message in messages
        for item in message.get("items", [])
        if item.get("type") == "function_call_output"
    }


def unanswered_calls(messages: Iterable[OpenAIMessage]) -> list[Item]:
    """The `function_call` items still owed an answer before the model can continue: no
    output yet and not approved (an approved call runs on the agent before the next request).
    A call pending approval, or a client call whose result has not come, is unanswered."""
    return _calls(list(messages), approved=False)


def approved_unexecuted_calls(messages: Iterable[OpenAIMessage]) -> list[Item]:
    """The gated `function_call` items the user approved that have no output yet: what the
    agent runs when it resumes, before the next model request."""
    return _calls(list(messages), approved=True)


def _calls(messages: list[OpenAIMessage], *, approved: bool) -> list[Item]:
    resolved = resolved_call_ids(messages)
    calls = []
    for message in messages:
        states = message.get("toolCallStates") or {}
        for item in message.get("items", []):
            if item.get("type") != "function_call" or item.get("call_id") in resolved:
                continue
            is_approved = (states.get(item.get("call_id")) or {}).get("approval") == "approved"
            if is_approved == approved:
                calls.append(item)
    return calls
