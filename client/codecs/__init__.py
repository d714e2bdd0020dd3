"""Content codecs for the turn layer. `vercel`: the Vercel AI SDK UIMessage codec."""

__all__: list[str] = []
