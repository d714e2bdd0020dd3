"""The turn layer against the in-process relay: two devices of one user (alice), another user
(bob) and a Python agent on one channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from client_support import MakeClient, abort_socket

from channel_relay.client.turns import AgentRun, AgentSession, Session, wait_until
from channel_relay.server import Relay

ANSWER = ["The ", "sky ", "is ", "blue ", "because ", "of ", "Rayleigh ", "scattering. ", "✓"]


class Agent:
    """A scripted agent serving every input on the channel: answers with `tokens` (or the
    answer chosen by `answers[input text]`), `delay` seconds apart."""

    def __init__(self, session: AgentSession, tokens: list[str], delay: float = 0.005) -> None:
        self.session, self.tokens, self.delay = session, tokens, delay
        self.answers: dict[str, list[str]] = {}
        self.outcomes: list[tuple[str, str]] = []
        # While `hold` is clear, each run streams its first `free` tokens and then waits.
        self.hold = asyncio.Event()
        self.hold.set()
        self.free = 0
        self.runs: set[asyncio.Task[None]] = set()
        self.task = asyncio.create_task(self._serve())

    async def _serve(self) -> None:
        async for invocation in self.session.invocations():
            run = await self.session.accept(invocation)
            task = asyncio.create_task(self._run(run))
            self.runs.add(task)
            task.add_done_callback(self.runs.discard)

    async def _run(self, run: AgentRun) -> None:
        await run.start()
        # The question answered: the user message the run hangs under (for a regenerate, the
        # input is a bare signal and the question is its parent).
        history = run.conversation()
        question = history[-1] if history else run.input_message
        text = "".join(p.get("text", "") for p in question["parts"] if p["type"] == "text")
        tokens = self.answers.get(text, self.tokens)

        async def gated() -> AsyncIterator[str]:
            for index, token in enumerate(tokens):
                if index >= self.free:
                    await self.hold.wait()
                yield token

        reason = await run.stream_text(gated(), delay=self.delay)
        await run.end(reason)
        self.outcomes.append((run.run_id, reason))

    def stop(self) -> None:
        self.task.cancel()


@pytest.fixture
async def world(make_client: MakeClient) -> AsyncIterator[dict[str, Any]]:
    channel = "ai:turns"
    phone = Session(await make_client("alice"), channel)
    laptop = Session(await make_client("alice"), channel)
    bob = Session(await make_client("bob"), channel)
    agent_session = AgentSession(await make_client("agent"), channel)
    for session in (phone, laptop, bob):
        await session.connect()
    await agent_session.connect()
    agent = Agent(agent_session, ANSWER)
    yield {"phone": phone, "laptop": laptop, "bob": bob, "agent": agent, "channel": channel}
    agent.stop()


async def test_own_turn_streams_and_observers_see_it(world: dict[str, Any]) -> None:
    phone, laptop, bob = world["phone"], world["laptop"], world["bob"]
    turn = await phone.send("Why is the sky blue?")
    chunks = [chunk async for chunk in turn]
    assert await turn.done() == "complete"
    assert [c["delta"] for c in chunks if c["type"] == "text-delta"] == ANSWER
    assert chunks[0]["type"] == "start" and chunks[-1]["type"] == "finish"
    expected = [
        {"role": "user", "text": "Why is the sky blue?"},
        {"role": "assistant", "text": "".join(ANSWER)},
    ]
    for session in (phone, laptop, bob):
        await wait_until(session, lambda s=session: s.view.conversation() == expected)
    assert phone.turns[turn.run_id].own and phone.turns[turn.run_id].client_id == "alice"
    # The other device of the same user observes the turn: it did not send the input.
    assert not laptop.turns[turn.run_id].own and laptop.turns[turn.run_id].client_id == "alice"
    assert not bob.turns[turn.run_id].own


async def test_active_turns_converge_on_every_device(world: dict[str, Any]) -> None:
    phone, laptop, bob, agent = world["phone"], world["laptop"], world["bob"], world["agent"]
    agent.hold.clear()
    mine = await phone.send("first")
    await mine.started
    theirs = await bob.send("second")
    await theirs.started
    expected = {"alice": {mine.run_id}, "bob": {theirs.run_id}}
    for session in (phone, laptop, bob):
        await wait_until(session, lambda s=session: dict(s.active_turns) == expected)
    agent.hold.set()
    await mine.done(10)
    await theirs.done(10)
    for session in (phone, laptop, bob):
        await wait_until(session, lambda s=session: dict(s.active_turns) == {})


async def test_cancel_own_cancels_only_this_users_turns(world: dict[str, Any]) -> None:
    phone, laptop, bob, agent = world["phone"], world["laptop"], world["bob"], world["agent"]
    agent.hold.clear()
    mine = await phone.send("mine")
    await mine.started
    theirs = await bob.send("theirs")
    await theirs.started
    # From the other device: "own" is the clientId's turns, wherever they were started.
    await wait_until(laptop, lambda: len(laptop.active_turns) == 2)
    cancelled = await laptop.cancel(own=True)
    assert cancelled == [mine.run_id]
    assert await mine.done(10) == "cancelled"
    agent.hold.set()
    assert await theirs.done(10) == "complete"
    assert bob.turns[theirs.run_id].status == "complete"
    for session in (phone, laptop, bob):
        await wait_until(session, lambda s=session: s.tree.runs[mine.run_id].status == "cancelled")


async def test_cancel_scopes_turn_id_client_id_all(world: dict[str, Any]) -> None:
    phone, bob, agent = world["phone"], world["bob"], world["agent"]
    agent.hold.clear()
    one = await phone.send("one")
    two = await bob.send("two")
    await one.started
    await two.started
    assert await bob.cancel(turn_id=one.run_id) == [one.run_id]
    assert await one.done(10) == "cancelled"
    three = await phone.send("three")
    await three.started
    assert await phone.cancel(client_id="bob") == [two.run_id]
    assert await two.done(10) == "cancelled"
    assert await phone.cancel(all=True) == [three.run_id]
    assert await three.done(10) == "cancelled"


async def test_late_joiner_sees_the_same_tree_and_a_streaming_turn(
    world: dict[str, Any], make_client: MakeClient
) -> None:
    phone, agent = world["phone"], world["agent"]
    for question in ("q1", "q2"):
        await (await phone.send(question)).done(10)
    agent.hold.clear()
    agent.free = 1
    streaming = await phone.send("q3")
    await wait_until(phone, lambda: streaming.text == "The ")
    late = Session(await make_client("carol"), world["channel"], history_page_size=7)
    await late.connect()
    while await late.load_older():
        pass
    # The run in flight shows as active, its text so far as an assistant message.
    assert dict(late.active_turns) == {"alice": {streaming.run_id}}
    assert late.view.conversation()[-1] == {"role": "assistant", "text": "The "}
    agent.hold.set()
    await streaming.done(10)
    await wait_until(late, lambda: late.view.conversation() == phone.view.conversation())
    assert dict(late.active_turns) == {}
    assert late.view.conversation()[-1]["text"] == "".join(ANSWER)


async def test_late_joiner_synthesises_a_run_whose_start_it_did_not_load(
    world: dict[str, Any], make_client: MakeClient
) -> None:
    phone, agent = world["phone"], world["agent"]
    agent.hold.clear()
    agent.free = 2
    streaming = await phone.send("q")
    await wait_until(phone, lambda: streaming.text == "The sky ")
    late = Session(await make_client("carol"), world["channel"], history_page_size=3)
    seen: list[Any] = []
    late.on("turn", seen.append)
    await late.connect()  # one page: outputs only, not the run-start
    run = late.tree.runs[streaming.run_id]
    assert run.synthesized and run.client_id == "alice" and run.status == "streaming"
    assert [t.turn_id for t in seen] == [streaming.run_id]
    agent.hold.set()
    await wait_until(late, lambda: late.tree.runs[streaming.run_id].status == "complete")
    assert late.turns[streaming.run_id].text == "".join(ANSWER)


async def test_regenerate_and_edit_make_branches_each_view_selects(
    world: dict[str, Any],
) -> None:
    phone, bob, agent = world["phone"], world["bob"], world["agent"]
    agent.answers = {"sky?": ["Blue."], "banana?": ["Yellow."]}
    first = await phone.send("sky?")
    await first.done(10)
    [user, assistant] = phone.view.nodes()
    agent.answers["sky?"] = ["Still ", "blue."]
    regen = await phone.regenerate(assistant.codec_message_id)
    assert await regen.done(10) == "complete"
    assert phone.view.conversation() == [
        {"role": "user", "text": "sky?"},
        {"role": "assistant", "text": "Still blue."},
    ]
    branch = phone.view.branch(assistant.codec_message_id)
    assert (branch.index, [n.text for n in branch.siblings]) == (1, ["Blue.", "Still blue."])
    edited = await phone.edit(user.codec_message_id, "banana?")
    assert await edited.done(10) == "complete"
    assert phone.view.conversation() == [
        {"role": "user", "text": "banana?"},
        {"role": "assistant", "text": "Yellow."},
    ]
    questions = phone.view.branch(user.codec_message_id)
    assert [n.text for n in questions.siblings] == ["sky?", "banana?"]
    assert phone.tree.nodes[questions.siblings[1].codec_message_id].fork_of == user.codec_message_id
    # A second view over the same tree keeps its own selection.
    other = phone.create_view()
    other.branch(user.codec_message_id).select(0)
    assert other.conversation()[1]["text"] == "Still blue."
    other.branch(assistant.codec_message_id).select(0)
    assert other.conversation()[1]["text"] == "Blue."
    assert phone.view.conversation()[0]["text"] == "banana?"
    # Another client sees the same siblings.
    await wait_until(bob, lambda: bob.view.conversation() == phone.view.conversation())
    assert [n.text for n in bob.view.branch(user.codec_message_id).siblings] == ["sky?", "banana?"]
    assert [n.text for n in bob.view.branch(assistant.codec_message_id).siblings] == [
        "Blue.",
        "Still blue.",
    ]


async def test_reconnect_mid_stream_loses_and_duplicates_nothing(
    world: dict[str, Any], relay: Relay
) -> None:
    phone, laptop, agent = world["phone"], world["laptop"], world["agent"]
    agent.delay = 0.02
    turn = await phone.send("long one")
    deltas: list[str] = []
    laptop.on(
        "chunks",
        lambda _t, _n, chunks: deltas.extend(
            c["delta"] for c in chunks if c["type"] == "text-delta"
        ),
    )
    own: list[str] = []
    dropped = False
    async for chunk in turn:
        if chunk["type"] == "text-delta":
            own.append(chunk["delta"])
            if len(own) == 3 and not dropped:
                dropped = True
                abort_socket(relay, phone.client)
                abort_socket(relay, laptop.client)
    assert await turn.done() == "complete"
    assert own == ANSWER
    await wait_until(laptop, lambda: laptop.tree.runs[turn.run_id].status == "complete")
    assert "".join(deltas) == "".join(ANSWER)
    assert laptop.turns[turn.run_id].text == "".join(ANSWER)


async def test_tool_approval_suspends_and_resumes(world: dict[str, Any]) -> None:
    phone, laptop, agent = world["phone"], world["laptop"], world["agent"]
    agent.stop()
    session: AgentSession = agent.session

    async def serve() -> None:
        invocations = session.invocations()
        run = await session.accept(await invocations.get(10))
        await run.start()
        await run.pipe(
            [
                {"type": "start"},
                {"type": "start-step"},
                {"type": "tool-input-start", "toolCallId": "call-1", "toolName": "weather"},
                {"type": "tool-input-delta", "toolCallId": "call-1", "inputTextDelta": '{"city":'},
                {"type": "tool-input-delta", "toolCallId": "call-1", "inputTextDelta": '"Oslo"}'},
                {
                    "type": "tool-input-available",
                    "toolCallId": "call-1",
                    "toolName": "weather",
                    "input": {"city": "Oslo"},
                },
                {"type": "tool-approval-request", "toolCallId": "call-1", "approvalId": "a-1"},
                {"type": "finish-step"},
                {"type": "finish", "finishReason": "tool-calls"},
            ]
        )
        await run.suspend()
        resumed = await session.accept(await invocations.get(10))
        assert resumed.continuation and resumed.run_id == run.run_id
        assert resumed.input_codec["approved"] == "true"
        await resumed.start()
        await resumed.pipe(
            [{"type": "tool-output-available", "toolCallId": "call-1", "output": {"tempC": -3}}]
        )
        await resumed.stream_text(["Minus ", "three."])
        await resumed.end("complete")

    server = asyncio.create_task(serve())
    turn = await phone.send("Weather in Oslo?")
    assert await turn.done(10) == "suspended"
    tool = [p for p in turn.message["parts"] if p["type"] == "tool-weather"]
    assert tool == [
        {
            "type": "tool-weather",
            "toolCallId": "call-1",
            "state": "approval-requested",
            "input": {"city": "Oslo"},
            "approval": {"id": "a-1"},
        }
    ]
    await wait_until(laptop, lambda: dict(laptop.active_turns) == {})
    resumed = await laptop.respond("call-1", approved=True)
    assert await resumed.done(10) == "complete"
    await server
    await wait_until(phone, lambda: phone.tree.runs[turn.run_id].status == "complete")
    texts = phone.view.conversation()
    assert texts[-1] == {"role": "assistant", "text": "Minus three."}
    tool_node = phone.tree.nodes[phone.view.nodes()[1].codec_message_id]
    [part] = [p for p in tool_node.message["parts"] if p["type"] == "tool-weather"]
    assert part["state"] == "output-available" and part["output"] == {"tempC": -3}


async def test_an_agent_loop_never_answers_inputs_from_history(make_client: MakeClient) -> None:
    channel = "ai:old-inputs"
    alice = Session(await make_client("alice"), channel)
    await alice.connect()
    old = [await alice.send(f"old question {i}") for i in range(4)]
    agent = AgentSession(await make_client("agent"), channel, history_page_size=1)
    await agent.connect()
    invocations = agent.invocations()
    # Serving the oldest input (an HTTP invocation) pages older history in.
    run = await agent.accept(old[0].event_id)
    assert run.input_message["parts"] == [{"type": "text", "text": "old question 0"}]
    fresh = await alice.send("a live question")
    invocation = await invocations.get(10)
    assert invocation.input_event_id == fresh.event_id
    await agent.close()


async def test_a_steer_reaches_the_running_turn_and_reports_it_was_consumed(
    world: dict[str, Any],
) -> None:
    phone, laptop, agent = world["phone"], world["laptop"], world["agent"]
    agent.stop()
    session: AgentSession = agent.session
    steered = asyncio.Event()

    async def serve() -> list[dict[str, Any]]:
        invocations = session.invocations()
        run = await session.accept(await invocations.get(10))
        await run.start()
        await run.stream_text(["Thinking ", "about it. "])
        await steered.wait()
        await wait_until(
            session.session, lambda: bool(session.session.tree.runs[run.run_id].steers)
        )
        taken = run.take_steers()
        await run.stream_text(["Red ", "too."])
        await run.end("complete")
        return taken

    server = asyncio.create_task(serve())
    turn = await phone.send("Name a colour")
    await wait_until(
        laptop,
        lambda: (
            laptop.view.conversation()[-1:]
            == [{"role": "assistant", "text": "Thinking about it. "}]
        ),
    )
    steer = await laptop.steer(turn.run_id, "Mention red as well")
    assert steer.serial is not None
    steered.set()
    taken = await server
    assert [p["text"] for p in taken[0]["parts"]] == ["Mention red as well"]
    assert await steer.outcome(10) == (True, "complete")
    # A steer is no branch of the conversation: it is threaded into the turn, between the
    # answer it interrupted and the answer it got (each pipe writes a new message, as in JS).
    await wait_until(phone, lambda: phone.tree.runs[turn.run_id].status == "complete")
    thread = [
        {"role": "user", "text": "Name a colour"},
        {"role": "assistant", "text": "Thinking about it. "},
        {"role": "user", "text": "Mention red as well"},
        {"role": "assistant", "text": "Red too."},
    ]
    for device in (phone, laptop):
        await wait_until(device, lambda d=device: d.view.conversation() == thread)
    assert [run.run_id for run in phone.view.runs()] == [turn.run_id]


async def test_a_steer_no_answer_took_yet_stays_at_the_end_of_the_turn(
    world: dict[str, Any],
) -> None:
    phone, laptop, agent = world["phone"], world["laptop"], world["agent"]
    agent.stop()
    session: AgentSession = agent.session
    steered = asyncio.Event()
    session.session.tree.on("steer", lambda _run, _cmid: steered.set())
    first_done = asyncio.Event()
    answer = asyncio.Event()

    async def serve() -> None:
        invocations = session.invocations()
        async with await session.accept(await invocations.get(10)) as run:
            await steered.wait()  # the steer is on the channel before any output
            await run.stream_text(["Blue."])  # an answer that did not take the steer
            first_done.set()
            await answer.wait()
            run.take_steers()
            await run.stream_text(["And red."])

    server = asyncio.create_task(serve())
    turn = await phone.send("Name a colour")
    await turn.started
    await laptop.steer(turn.run_id, "Mention red as well")
    await first_done.wait()
    # As the JS view orders a run's messages: an unanswered steer moves to the end, so the
    # agent's next prompt ends on the user's words.
    question = {"role": "user", "text": "Name a colour"}
    steer = {"role": "user", "text": "Mention red as well"}
    blue = {"role": "assistant", "text": "Blue."}
    for device in (phone, laptop):
        await wait_until(device, lambda d=device: d.view.conversation() == [question, blue, steer])
    answer.set()
    await server
    # Answered, it takes its place in serial order: it was sent before the first answer.
    red = {"role": "assistant", "text": "And red."}
    for device in (phone, laptop):
        await wait_until(
            device, lambda d=device: d.view.conversation() == [question, steer, blue, red]
        )


async def test_a_client_tool_result_forks_and_supersedes_the_turn_that_asked(
    world: dict[str, Any],
) -> None:
    phone, laptop, agent = world["phone"], world["laptop"], world["agent"]
    agent.stop()
    session: AgentSession = agent.session

    async def serve() -> str:
        invocations = session.invocations()
        run = await session.accept(await invocations.get(10))
        await run.start()
        call = {"toolCallId": "loc-1", "toolName": "getLocation"}
        await run.pipe(
            [
                {"type": "start"},
                {"type": "start-step"},
                {"type": "tool-input-available", **call, "input": {}},
                {"type": "finish-step"},
                {"type": "finish", "finishReason": "tool-calls"},
            ]
        )
        await run.end("complete")
        fork = await session.accept(await invocations.get(10))
        assert fork.input_codec["kind"] == "tool-result"
        await fork.start()
        await fork.end(await fork.stream_text(["You are ", "in Oslo."]))
        return fork.run_id

    server = asyncio.create_task(serve())
    turn = await phone.send("Where am I?")
    assert await turn.done(10) == "complete"
    answered = await laptop.add_tool_result("loc-1", {"city": "Oslo"})
    assert await answered.done(10) == "complete"
    fork_run = await server
    for device in (phone, laptop):
        await wait_until(
            device,
            lambda d=device: (
                d.tree.runs.get(fork_run) is not None
                and d.tree.runs[fork_run].status == "complete"
                and len(d.view.nodes()) == 3
            ),
        )
        user, seeded, answer = device.view.nodes()
        assert device.tree.runs[turn.run_id].superseded
        assert seeded.run_id is None and answer.run_id == fork_run
        [tool] = [p for p in seeded.message["parts"] if p.get("toolCallId") == "loc-1"]
        assert tool["state"] == "output-available" and tool["output"] == {"city": "Oslo"}
        assert answer.text == "You are in Oslo."
        # The turn that asked is hidden from branch selection: one branch under the question.
        assert len(device.tree.children(user.codec_message_id)) == 1


async def test_a_view_pages_older_history_and_tells_which_turn_shows_each_message(
    make_client: MakeClient, world: dict[str, Any]
) -> None:
    phone = world["phone"]
    turns = []
    for i in range(3):
        turns.append(await phone.send(f"question {i}"))
        assert await turns[-1].done(10) == "complete"
        await wait_until(phone, lambda: len(phone.view.nodes()) == 2 * len(turns))
    late = Session(await make_client("carol"), world["channel"], history_page_size=2)
    await late.connect()
    view = late.create_view()
    assert view.has_older()
    shown: list[dict[str, Any]] = []
    while view.has_older():
        shown = await view.load_older() + shown
    assert [n["role"] for n in view.conversation()] == ["user", "assistant"] * 3
    assert [m["id"] for m in shown] == [m["id"] for m in view.messages()]
    assert [run.run_id for run in view.runs()] == [t.run_id for t in turns]
    question, answer = view.nodes()[2:4]
    run = view.run_of(answer.codec_message_id)
    assert run is not None and run.run_id == turns[1].run_id
    asked = view.run_of(question.codec_message_id)
    assert asked is not None and asked.run_id == turns[1].run_id
    await late.close()


async def test_sync_yields_what_a_chat_ui_renders_as_it_changes(world: dict[str, Any]) -> None:
    phone, laptop = world["phone"], world["laptop"]
    renders = laptop.view.sync()
    assert await renders.get(5) == []
    turn = await phone.send("Why is the sky blue?")
    assert await turn.done(10) == "complete"
    final = [
        {"role": "user", "text": "Why is the sky blue?"},
        {"role": "assistant", "text": "".join(ANSWER)},
    ]
    seen: list[list[dict[str, Any]]] = []
    while not seen or [{"role": m["role"], "text": _text(m)} for m in seen[-1]] != final:
        seen.append(await renders.get(5))
    # Every render is a new list (a UI can keep the last one), growing token by token.
    texts = [_text(r[-1]) for r in seen if len(r) == 2]
    assert texts == sorted(texts, key=len) and len(texts) > 1
    renders.close()


def _text(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")


async def test_run_hooks_refuse_a_cancel_or_add_last_words_and_the_context_ends_the_run(
    world: dict[str, Any],
) -> None:
    phone, agent = world["phone"], world["agent"]
    agent.stop()
    session: AgentSession = agent.session
    refused: list[dict[str, str]] = []
    cancel_seen = asyncio.Event()

    def refuse(request: dict[str, str]) -> bool:
        refused.append(request)
        cancel_seen.set()
        return False

    async def last_words(write: Any) -> None:
        await write({"type": "text-delta", "id": "t", "delta": " [stopped]"})

    async def serve() -> None:
        invocations = session.invocations()
        async with await session.accept(await invocations.get(10), on_cancel=refuse) as run:
            await run.stream_text(["Can't ", "stop ", "me."], text_id="t")
            await cancel_seen.wait()
            await run.stream_text([" Still here."], text_id="u")
        second = await session.accept(await invocations.get(10), on_cancelled=last_words)
        async with second:
            await second.pipe(_endless(second))
        third = await session.accept(await invocations.get(10))
        with pytest.raises(RuntimeError):
            async with third:
                raise RuntimeError("model unavailable")

    server = asyncio.create_task(serve())
    first = await phone.send("one")
    await wait_until(phone, lambda: "me." in first.text)
    await first.cancel()
    assert await first.done(10) == "complete"
    assert refused and refused[0]["run-id"] == first.run_id
    second = await phone.send("two")
    await wait_until(phone, lambda: len(second.text) > 3)
    await second.cancel()
    assert await second.done(10) == "cancelled"
    assert second.text.endswith(" [stopped]")
    third = await phone.send("three")
    assert await third.done(10) == "error"
    await server
    error = phone.tree.runs[third.run_id].error
    assert error == {"code": "50000", "message": "the agent failed: model unavailable"}


async def _endless(run: AgentRun) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "text-start", "id": "t"}
    while True:
        yield {"type": "text-delta", "id": "t", "delta": "la "}
        await asyncio.sleep(0.01)
