// Drives Debian's headless Chromium (through playwright-core) against danlu serve's chat page
// (run by ChatPageBrowserTest):
//   node chat-page.js <url> <user-data-dir> <timeout-seconds> <json: {turns, temperature, maxTokens, stopTurn}>
// Sets greedy sampling, sends each turn, records how the answer grew while it streamed, and
// prints one JSON line: per turn the final answer and the distinct lengths seen on the way; with
// stopTurn, sends one more long turn and presses Stop once its answer has begun.
const { chromium } = require('playwright-core');

async function main() {
  const [url, userDataDir, timeoutArg, argJson] = process.argv.slice(2);
  const args = JSON.parse(argJson);
  const timeout = Number(timeoutArg || 60) * 1000;
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const out = { turns: [] };
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(timeout);
    await page.goto(url);
    await page.waitForFunction(() => document.querySelector('#model').textContent !== '…');
    out.model = await page.textContent('#model');
    await page.fill('#temperature', String(args.temperature));
    await page.fill('#max_tokens', String(args.maxTokens));
    // every text the newest assistant message shows, as it changes
    await page.evaluate(() => {
      window.seen = [];
      new MutationObserver(() => {
        const all = document.querySelectorAll('.msg.assistant');
        const last = all[all.length - 1];
        if (last) window.seen.push(last.textContent);
      }).observe(document.querySelector('#messages'), { childList: true, subtree: true, characterData: true });
    });
    for (const [i, text] of args.turns.entries()) {
      await page.evaluate(() => { window.seen = []; });
      await page.fill('#input', text);
      await page.click('#send');
      await page.waitForFunction((n) => {
        const all = document.querySelectorAll('.msg.assistant');
        return all.length === n && all[n - 1].dataset.done === 'true';
      }, i + 1);
      const answer = await page.evaluate(() => {
        const all = document.querySelectorAll('.msg.assistant');
        return { text: all[all.length - 1].textContent, cls: all[all.length - 1].className };
      });
      const seen = await page.evaluate(() => window.seen);
      out.turns.push({
        answer: answer.text,
        cls: answer.cls,
        lengths: [...new Set(seen.map((s) => s.length))],
        status: await page.textContent('#status'),
      });
    }
    out.userMessages = await page.$$eval('.msg.user', (els) => els.map((e) => e.textContent));
    if (args.stopTurn) {
      // a long answer, stopped by the user once some of it has arrived
      // a fresh conversation, so the answer is the first turn's (known to stream)
      await page.click('#clear');
      const n = 1;
      await page.fill('#max_tokens', '400');
      await page.fill('#input', args.stopTurn);
      await page.click('#send');
      await page.waitForFunction((k) => {
        const all = document.querySelectorAll('.msg.assistant');
        return all.length === k && (all[k - 1].textContent.length > 0 || all[k - 1].dataset.done === 'true');
      }, n);
      await page.click('#stop');
      await page.waitForFunction((k) => document.querySelectorAll('.msg.assistant')[k - 1].dataset.done === 'true', n);
      out.stopped = {
        status: await page.textContent('#status'),
        answer: await page.evaluate((k) => document.querySelectorAll('.msg.assistant')[k - 1].textContent, n),
        sendEnabled: await page.isEnabled('#send'),
        stopEnabled: await page.isEnabled('#stop'),
      };
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
