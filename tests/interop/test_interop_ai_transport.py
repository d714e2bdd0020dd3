"""The official @ably/ai-transport 0.8.0 (Vercel AI SDK codec, unmodified `ably` 2.28) against the
relay: client sessions, an agent session streaming token by token, observers, late joiners,
cancel, branches, tool approval and a dropped socket.

Each test runs one script of scripts/ai_*.mjs (helpers in lib/ai.mjs). The agent is scripted (a
canned answer split into tokens, no model) and runs in the same node process on its own
connection, as an agent route would next to the client. Channels are in the `ai:` namespace,
which the default app opens to mutable messages.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from interop_support import RunNode

# ably-js through both engines (tests/conftest.py).
ENGINES = ["sqlite", "postgresql"]

if TYPE_CHECKING:
    from channel_relay.server import Relay

QUESTION = "What colour is the sky on a clear day?"
ANSWER = (
    "On a clear day the sky looks blue, because air scatters the short blue wavelengths of "
    "sunlight far more than the long red ones. Ünïcödé ✓ too."
)
TURNS = [
    ["First question?", "First answer, short."],
    ["Second question?", "The second answer is a little longer than the first one."],
    ["Third question?", "A third answer."],
    ["Fourth question?", "The fourth answer streams while another device opens the chat late."],
]


def _tokens(result: dict[str, Any]) -> list[str]:
    tokens: list[str] = result["tokens"]
    assert len(tokens) > 10 and "".join(tokens) == ANSWER
    return tokens


def _qa(question: str, answer: str) -> list[dict[str, Any]]:
    return [{"role": "user", "text": question}, {"role": "assistant", "text": answer}]


async def test_fresh_send_streams_exact_text_and_completes(run_node: RunNode) -> None:
    """(1) useChat path: ChatTransport publishes and POSTs; a per-request agent session (attached
    after the input, so it locates it in history) streams; the chunk stream, the UIMessage useChat
    builds from it and the session view all hold the exact text."""
    result = await run_node(
        "ai_fresh_send.mjs",
        args={"channel": "ai:fresh", "question": QUESTION, "answer": ANSWER},
    )
    tokens = _tokens(result)
    assert result["errors"] == []
    [post] = result["posts"]
    assert post["body"]["sessionName"] == "ai:fresh" and post["body"]["inputEventId"]
    [outcome] = result["outcomes"]
    assert outcome["reason"] == "complete"
    # The per-request agent attached after the input and found it by paging channel history.
    assert outcome["historyPages"] >= 1
    # Every token arrived once, in order, as its own delta: streamed, not delivered at the end.
    assert result["chunkDeltas"] == tokens
    assert result["deltas"] == tokens
    assert result["chunkTypes"][0] == "start" and result["chunkTypes"][-1] == "finish"
    assert result["built"] == {"role": "assistant", "text": ANSWER}
    assert result["streamingAfter"] is False
    assert result["conversation"] == _qa(QUESTION, ANSWER)
    assert result["runs"] == [
        {"runId": outcome["runId"], "clientId": "alice", "status": "complete"}
    ]


async def test_observer_sees_input_and_tokens_live_and_run_is_not_its_own(
    run_node: RunNode,
) -> None:
    """(2) bob, on the same channel, sees alice's input first, then every token live; the run
    belongs to alice (its run-client-id), not to him."""
    result = await run_node(
        "ai_observer.mjs",
        args={"channel": "ai:observer", "question": QUESTION, "answer": ANSWER},
    )
    tokens = _tokens(result)
    assert result["errors"] == []
    assert result["outcome"]["reason"] == "complete"
    assert result["handleStatus"] == "complete"
    sender, observer = result["sender"], result["observer"]
    assert sender["conversation"] == observer["conversation"] == _qa(QUESTION, ANSWER)
    assert sender["deltas"] == tokens
    assert observer["deltas"] == tokens
    assert observer["firstSeen"] == "input"
    run_id = result["runId"]
    assert observer["runs"] == [{"runId": run_id, "clientId": "alice", "status": "complete"}]
    assert observer["ownerOfInput"] == "alice"
    assert [e["type"] for e in observer["lifecycle"]] == ["start", "end"]
    assert {e["clientId"] for e in observer["lifecycle"]} == {"alice"}


@pytest.mark.parametrize("mode", ["mid", "after"])
async def test_late_joiner_with_page_size_3_builds_same_conversation(
    run_node: RunNode, mode: str
) -> None:
    """(3) joins while the last answer streams, (4) joins after the run: with historyPageSize 3
    carol pages the whole conversation in and ends up with exactly alice's conversation."""
    result = await run_node(
        "ai_late_join.mjs",
        args={"channel": f"ai:late-{mode}", "mode": mode, "turns": TURNS, "pageSize": 3},
    )
    assert result["errors"] == []
    expected = [entry for question, answer in TURNS for entry in _qa(question, answer)]
    assert result["sender"] == expected
    assert result["joiner"] == expected
    # The history really came in pages of 3 (ably-js follows the relay's Link: rel="next").
    assert result["historyCalls"][0] == {"limit": 3, "untilAttach": True}
    pages = result["historyPages"]
    assert len(pages) > 5 and all(n <= 3 for n in pages)
    if mode == "mid":
        # carol joined mid-answer: what she had then was a strict prefix, the rest came live.
        last = result["joinerAtJoin"][-1]
        assert last["role"] == "assistant"
        assert TURNS[-1][1].startswith(last["text"]) and last["text"] != TURNS[-1][1]
    # The run carol watched to the end is complete for her too. (Earlier runs whose ai-run-end
    # sat on a newer history page than the rest of the run may stay "active" in her tree: the
    # SDK ignores a run-end for a run it does not know yet, tree.ts _applyRunEnd.)
    assert result["joinerRuns"][-1]["status"] == "complete"
    assert [r["runId"] for r in result["joinerRuns"]] == [r["runId"] for r in result["senderRuns"]]


async def test_cancel_from_another_client_ends_run_cancelled(run_node: RunNode) -> None:
    """(5) dave cancels alice's run mid-stream: the agent's pipe aborts, the run ends cancelled
    for everyone, and the text stops at what had been streamed."""
    result = await run_node(
        "ai_cancel.mjs",
        args={"channel": "ai:cancel", "question": QUESTION, "answer": ANSWER, "cancelAt": 4},
    )
    tokens = _tokens(result)
    assert result["errors"] == []
    assert result["outcome"]["reason"] == "cancelled"
    assert result["abortedAt"] == 4
    assert result["daveSawRun"] == {"clientId": "alice", "status": "active"}
    assert result["handleStatus"] == "cancelled"
    partial = "".join(tokens[:4])
    for side in ("sender", "other"):
        assert result[side]["conversation"] == _qa(QUESTION, partial)
        assert result[side]["runs"] == [
            {"runId": result["runId"], "clientId": "alice", "status": "cancelled"}
        ]


async def test_regenerate_and_edit_create_branches(run_node: RunNode) -> None:
    """(6) regenerate: two assistant siblings under the question; edit: two user siblings; a
    second client sees the same siblings."""
    answers = ["Blue, mostly.", "It is blue during the day.", "Bananas are yellow."]
    result = await run_node(
        "ai_branches.mjs",
        args={
            "channel": "ai:branches",
            "question": "What colour is the sky?",
            "edited": "What colour is a banana?",
            "answers": answers,
        },
    )
    assert result["errors"] == []
    assert result["statuses"] == ["complete", "complete", "complete"]
    assert result["afterFirst"] == _qa("What colour is the sky?", answers[0])
    assert result["afterRegen"] == _qa("What colour is the sky?", answers[1])
    assistant_siblings = [{"role": "assistant", "text": a} for a in answers[:2]]
    assert result["regenBranch"] == {
        "hasSiblings": True,
        "index": 1,
        "siblings": assistant_siblings,
    }
    assert result["regenRun"]["regenerates"] == result["regenRun"]["expected"]
    assert result["afterEdit"] == _qa("What colour is a banana?", answers[2])
    user_siblings = [
        {"role": "user", "text": "What colour is the sky?"},
        {"role": "user", "text": "What colour is a banana?"},
    ]
    assert result["editBranch"] == {"hasSiblings": True, "index": 1, "siblings": user_siblings}
    assert result["editedForkOf"] == result["expectedForkOf"]
    assert result["afterSelect"] == _qa("What colour is the sky?", answers[1])
    watcher = result["watcher"]
    assert watcher["regenBranch"]["siblings"] == assistant_siblings
    assert watcher["editBranch"]["siblings"] == user_siblings


async def test_tool_approval_run_suspends_and_resumes(run_node: RunNode) -> None:
    """(7) The agent asks for approval and suspends; alice approves (a continuation with the
    run id); the agent resumes the same run (ai-run-resume), runs the tool and answers."""
    answer = "It is 4 degrees in Berlin."
    result = await run_node(
        "ai_tool_approval.mjs",
        args={"channel": "ai:tools", "question": "Weather in Berlin?", "answer": answer},
    )
    assert result["errors"] == []
    run_id = result["runId"]
    assert result["first"]["reason"] == "suspend"
    assert result["second"] == {**result["second"], "runId": run_id, "reason": "complete"}
    assert result["second"]["invocationId"] != result["first"]["invocationId"]
    assert result["resumedRunId"] == run_id
    suspended = result["whileSuspended"]
    assert suspended["runs"] == [{"runId": run_id, "clientId": "alice", "status": "suspended"}]
    assert suspended["conversation"][-1]["tools"] == [
        {"toolCallId": "call-1", "state": "approval-requested"}
    ]
    assert result["resumeKinds"] == ["resume", "end"]
    final = result["final"]
    assert final["runs"] == [{"runId": run_id, "clientId": "alice", "status": "complete"}]
    tools = [m["tools"] for m in final["conversation"] if "tools" in m]
    assert tools == [[{"toolCallId": "call-1", "state": "output-available"}]]
    assert final["conversation"][-1] == {"role": "assistant", "text": answer}


async def test_socket_dropped_mid_stream_resumes_with_exact_text(
    run_node: RunNode, relay: Relay, tmp_path: Path
) -> None:
    """(8) The relay drops alice's TCP socket mid-answer; ably-js resumes (same connection id,
    channel resumed) and the tokens published meanwhile arrive once each: exact text."""
    flag = tmp_path / "drop-now"
    script = asyncio.create_task(
        run_node(
            "ai_socket_drop.mjs",
            args={
                "channel": "ai:drop",
                "question": QUESTION,
                "answer": ANSWER,
                "dropAt": 5,
                "flagFile": str(flag),
            },
        )
    )
    # Wait for the script's signal; if it never comes, its own failure report says why.
    for _ in range(2500):
        if script.done() or (flag.exists() and flag.read_text()):
            break
        await asyncio.sleep(0.01)
    if not (flag.exists() and flag.read_text()):
        await script
        pytest.fail("the script never reached the drop point")
    connection = relay.realtime.connections[flag.read_text()]
    assert connection.identity.client_id == "alice"
    assert connection.writer is not None
    connection.writer.abort()
    result = await script
    tokens = _tokens(result)
    assert result["errors"] == []
    assert result["outcome"]["reason"] == "complete"
    assert "disconnected" in result["states"] and result["states"][-1] == "connected"
    assert result["idAfter"] == result["idBefore"], "the connection was resumed, not replaced"
    assert {"current": "attached", "resumed": True, "reason": None} in result["channelEvents"]
    assert result["duringGap"] > 0, "some tokens were published while alice was away"
    assert result["deltas"] == tokens, "each token exactly once, in order"
    assert result["conversation"] == _qa(QUESTION, ANSWER)
    assert result["runs"][0]["status"] == "complete"
