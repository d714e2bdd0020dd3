"""Content codecs for the turn layer. `codec`: the interface a codec implements, the
codec-agnostic decoders and the lifecycle repair; `define`: a codec declared from descriptor
tables (the JS `defineCodec`), with `fields` (header fields, data codecs); `inputs`: the
well-known client inputs (the JS `create*` factories); `vercel`: the Vercel AI SDK UIMessage
codec; `openai`, `openai_messages`: the OpenAI Responses codec and its messages; `jsjson`: JSON
text as JS `JSON.stringify` writes it."""

__all__: list[str] = []
