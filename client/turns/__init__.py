"""Turn semantics for multi-device AI sessions, on @ably/ai-transport 0.8.0's wire format.

`Session` (a client: own and observer turns, active_turns, cancel scopes, history, branches,
steers, client tool-result forks, agent statuses), `AgentSession` (an agent: accept
invocations, stream answers, honour cancels, suspend/resume, report its status on presence),
the conversation tree they share (`ConversationTree`, `View`, `Branch`), and the encoder that
puts both on the wire byte for byte as the JS SDK does (`Encoder`).
"""

from channel_relay.client.turns.agent import (
    AgentRun,
    AgentSession,
    ChunkWriter,
    Invocation,
    RunHooks,
)
from channel_relay.client.turns.encoder import Encoder, EncoderCore, Write
from channel_relay.client.turns.session import ActiveTurn, Session, Steer, Turn, wait_until
from channel_relay.client.turns.steps import RunStep
from channel_relay.client.turns.tree import Branch, ConversationTree, Node, Pager, Run, Step, View

__all__ = [
    "ActiveTurn",
    "AgentRun",
    "AgentSession",
    "Branch",
    "ChunkWriter",
    "ConversationTree",
    "Encoder",
    "EncoderCore",
    "Invocation",
    "Node",
    "Pager",
    "Run",
    "RunHooks",
    "RunStep",
    "Session",
    "Steer",
    "Step",
    "Turn",
    "View",
    "Write",
    "wait_until",
]
