"""Content codecs for the turn layer. `codec`: the interface a codec implements (the JS
`defineCodec`) and the codec-agnostic output decoder; `vercel`: the Vercel AI SDK UIMessage
codec; `jsjson`: JSON text as JS `JSON.stringify` writes it."""

__all__: list[str] = []
