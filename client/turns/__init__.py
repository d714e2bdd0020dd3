"""Turn semantics for multi-device AI sessions, on @ably/ai-transport 0.8.0's wire format.

`Session` (a client: own and observer turns, active_turns, cancel scopes, history, branches),
`AgentSession` (an agent: accept invocations, stream answers, honour cancels, suspend/resume),
and the conversation tree they share (`ConversationTree`, `View`, `Branch`).
"""

from channel_relay.client.turns.agent import AgentRun, AgentSession, Invocation
from channel_relay.client.turns.session import ActiveTurn, Session, Turn, wait_until
from channel_relay.client.turns.tree import Branch, ConversationTree, Node, Run, View

__all__ = [
    "ActiveTurn",
    "AgentRun",
    "AgentSession",
    "Branch",
    "ConversationTree",
    "Invocation",
    "Node",
    "Run",
    "Session",
    "Turn",
    "View",
    "wait_until",
]
