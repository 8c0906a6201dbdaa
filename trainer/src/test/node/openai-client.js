// The official openai npm client against `danlu serve` (run by ServeOpenAiClientTest):
//   node openai-client.js <base-url> <api-key> <json: {instruction, prompt, maxTokens}>
// Prints one JSON line with what the client returned for chat (plain and streamed),
// completions (plain and streamed), the model list, an embedding and a refused request.
const { OpenAI } = require('openai');

async function main() {
  const [baseURL, apiKey, argJson] = process.argv.slice(2);
  const args = JSON.parse(argJson);
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
  const out = {};
  const messages = [{ role: 'user', content: args.instruction }];

  const chat = await client.chat.completions.create({
    model: 'danlu', messages, temperature: 0, max_tokens: args.maxTokens,
  });
  out.chat = {
    text: chat.choices[0].message.content,
    role: chat.choices[0].message.role,
    finish: chat.choices[0].finish_reason,
    usage: chat.usage,
    object: chat.object,
  };

  const stream = await client.chat.completions.create({
    model: 'danlu', messages, temperature: 0, max_tokens: args.maxTokens, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta && c.delta.content) text += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
  out.chatStream = { text, chunks, finish, usage };

  const comp = await client.completions.create({
    model: 'danlu', prompt: args.prompt, temperature: 0, max_tokens: args.maxTokens,
  });
  out.completion = { text: comp.choices[0].text, finish: comp.choices[0].finish_reason, usage: comp.usage };

  const cs = await client.completions.create({
    model: 'danlu', prompt: args.prompt, temperature: 0, max_tokens: args.maxTokens, stream: true,
  });
  let ctext = '';
  let cfinish = null;
  for await (const chunk of cs) {
    const c = chunk.choices[0];
    if (!c) continue;
    ctext += c.text || '';
    if (c.finish_reason) cfinish = c.finish_reason;
  }
  out.completionStream = { text: ctext, finish: cfinish };

  const models = await client.models.list();
  out.models = models.data.map((m) => m.id);

  // the client asks for base64 by default and decodes it to floats
  const emb = await client.embeddings.create({ model: 'danlu', input: args.prompt });
  const v = emb.data[0].embedding;
  out.embedding = { length: v.length, first: v.slice(0, 4), norm: Math.sqrt(v.reduce((s, x) => s + x * x, 0)), usage: emb.usage };

  try {
    await client.chat.completions.create({ model: 'danlu', messages, temperature: 5 });
    out.refused = { status: 0 };
  } catch (e) {
    out.refused = { status: e.status, name: e.constructor.name, param: e.param, message: e.message };
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
