"""The preset dictionary of the store's deflated cells (`_cells.DEFLATE_V1`): part of the file format, so never
edited (a new dictionary is a new codec byte, and the old one stays to read old rows).

Deflate finds repeats in the window before a byte, the dictionary included: a chat span's ~1.4 KB of attribute JSON
is mostly names every span repeats (`gen_ai.usage.input_tokens`...), which a cell then refers to in 2-3 bytes each
(a demo chat span: 1,447 bytes of JSON, 562 deflated alone, 209 with this dictionary). It holds attribute names (the
rarer first), the events' shapes, the keys only failed calls, embeddings, tool calls and streams have, and one chat
span's compact attributes last, where references are shortest — no content, model or id. Measured: a 6.7 KB
dictionary deflated chat spans no smaller, and setting it up cost 50% more CPU per cell.
"""

ZDICT_V1 = (
    b'{"gen_ai.request.temperature":"","gen_ai.request.top_p":"","gen_ai.request.seed":"","gen_ai.request.stop_s'
    b'equences":"","gen_ai.request.reasoning.level":"","gen_ai.output.type":"","gen_ai.system_instructions":"","'
    b'session.id":"","gen_ai.conversation.id":"","user.id":"","metadata":"","gateway.call_id":"","gateway.input_'
    b'messages.omitted":"","gen_ai.usage.cache_read.input_tokens":"","llm.token_count.prompt_details.cache_read"'
    b':"","gen_ai.usage.reasoning.output_tokens":"","llm.token_count.completion_details.reasoning":"","gateway.c'
    b'ost.upstream_inference":""}[{"name":"exception","time_ns":0,"attributes":{"exception.type":"openai.","exce'
    b'ption.message":"Error code: ","exception.stacktrace":"Traceback (most recent call last):\\n  File \\"","ex'
    b'ception.escaped":"False"}}][{"name":"gateway.first_chunk","time_ns":0,"attributes":{}}]{"error.type":"","g'
    b'ateway.error.code":"","gateway.error.message":"","embedding.model_name":"","gen_ai.request.encoding_format'
    b's":[""],"gateway.embeddings.count":0,"gen_ai.embeddings.dimension.count":0,"input.value":"","embedding.emb'
    b'eddings.0.embedding.text":"","gen_ai.tool.definitions":"[{\\"type\\":\\"function\\",\\"function\\":{\\"nam'
    b'e\\":\\"\\",\\"description\\":\\"\\",\\"parameters\\":{\\"type\\":\\"object\\",\\"properties\\":{},\\"requ'
    b'ired\\":[\\"\\"]}}}]","gen_ai.output.messages":"[{\\"role\\":\\"assistant\\",\\"parts\\":[{\\"type\\":\\"t'
    b'ool_call\\",\\"id\\":\\"\\",\\"name\\":\\"\\",\\"arguments\\":\\"\\"}],\\"finish_reason\\":\\"tool_calls\\'
    b'"}]","gateway.stream.outcome":"","gateway.stream.chunks":0,"gen_ai.response.time_to_first_chunk":0}[{"gen_'
    b'ai.operation.name":"chat","gen_ai.provider.name":"openrouter","gen_ai.request.model":"","server.address":"'
    b'openrouter.ai","server.port":0,"gateway.name":"openrouter","openinference.span.kind":"LLM","llm.model_name'
    b'":"","llm.system":"openai","llm.provider":"openrouter","gen_ai.request.max_tokens":0,"gen_ai.request.strea'
    b'm":false,"llm.invocation_parameters":"","gen_ai.response.model":"","gen_ai.response.id":"","gen_ai.usage.i'
    b'nput_tokens":0,"llm.token_count.prompt":0,"gen_ai.usage.output_tokens":0,"llm.token_count.completion":0,"l'
    b'lm.token_count.total":0,"gen_ai.usage.cost":0,"llm.cost.total":0,"llm.cost.prompt":0,"llm.cost.completion"'
    b':0,"gateway.cost.is_byok":false,"gateway.cost.upstream_inference_prompt":0,"gateway.cost.upstream_inferenc'
    b'e_completions":0,"gateway.upstream.provider":"","gen_ai.response.finish_reasons":["stop"],"gen_ai.input.me'
    b'ssages":"[{\\"role\\":\\"user\\",\\"parts\\":[{\\"type\\":\\"text\\",\\"content\\":\\"\\"}]}]","input.mime'
    b'_type":"application/json","gen_ai.output.messages":"[{\\"role\\":\\"assistant\\",\\"parts\\":[{\\"type\\":'
    b'\\"text\\",\\"content\\":\\"\\"}],\\"finish_reason\\":\\"stop\\"}]","output.mime_type":"text/plain"},[["in'
    b'",30,1],["out",33,1],["llm.out",35,2],["llm.in",37,2]]]'
)
