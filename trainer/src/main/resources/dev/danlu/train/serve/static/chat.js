// danlu chat page: multi-turn chat against this server's /v1/chat/completions with streaming
// (server-sent events read from fetch's body), a system prompt, sampling controls and a stop
// button that aborts the request (the server then cancels the generation and frees its slot).
'use strict';

const $ = (id) => document.getElementById(id);
const history = []; // {role, content} of finished turns
let controller = null;

function addMessage(role, text) {
  const div = document.createElement('div');
  div.className = 'msg ' + role;
  div.textContent = text;
  $('messages').appendChild(div);
  $('messages').scrollTop = $('messages').scrollHeight;
  return div;
}

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = $('api_key').value.trim();
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

function number(id) {
  return Number($(id).value);
}

function busy(on) {
  $('send').disabled = on;
  $('stop').disabled = !on;
}

async function send(text) {
  const messages = [];
  const system = $('system').value;
  if (system.trim()) messages.push({ role: 'system', content: system });
  messages.push(...history, { role: 'user', content: text });
  addMessage('user', text);
  const out = addMessage('assistant streaming', '');
  busy(true);
  controller = new AbortController();
  const started = performance.now();
  let answer = '';
  let finish = null;
  let usage = null;
  try {
    const res = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: headers(),
      signal: controller.signal,
      body: JSON.stringify({
        messages, stream: true,
        temperature: number('temperature'), top_p: number('top_p'), top_k: number('top_k'),
        repetition_penalty: number('repetition_penalty'), max_tokens: number('max_tokens'),
      }),
    });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      throw new Error('HTTP ' + res.status + ': ' + ((body.error && body.error.message) || res.statusText));
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data: ')) continue; // comments keep the connection checked
          const data = line.slice(6);
          if (data === '[DONE]') continue;
          const chunk = JSON.parse(data);
          if (chunk.usage) usage = chunk.usage;
          const choice = chunk.choices && chunk.choices[0];
          if (!choice) continue;
          if (choice.delta && choice.delta.content) {
            answer += choice.delta.content;
            out.textContent = answer;
            $('messages').scrollTop = $('messages').scrollHeight;
          }
          if (choice.finish_reason) finish = choice.finish_reason;
        }
      }
    }
    history.push({ role: 'user', content: text }, { role: 'assistant', content: answer });
    const secs = (performance.now() - started) / 1000;
    $('status').textContent = 'finish: ' + finish + (usage ? ', ' + usage.completion_tokens +
      ' tokens in ' + secs.toFixed(1) + ' s' : '');
  } catch (e) {
    if (e.name === 'AbortError') {
      // a stopped answer still counts as the turn's answer, as far as it got
      history.push({ role: 'user', content: text }, { role: 'assistant', content: answer });
      $('status').textContent = 'stopped';
    } else {
      out.className = 'msg error';
      out.textContent = String(e.message || e);
      $('status').textContent = 'error';
    }
  } finally {
    out.classList.remove('streaming');
    out.dataset.done = 'true';
    controller = null;
    busy(false);
  }
}

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('input').value;
  if (!text.trim() || controller) return;
  $('input').value = '';
  send(text);
});
$('input').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    $('composer').requestSubmit();
  }
});
$('stop').addEventListener('click', () => controller && controller.abort());
$('clear').addEventListener('click', () => {
  history.length = 0;
  $('messages').textContent = '';
  $('status').textContent = 'history cleared';
});
fetch('/health').then((r) => r.json()).then((h) => { $('model').textContent = h.model; })
  .catch(() => { $('model').textContent = '(server unreachable)'; });
