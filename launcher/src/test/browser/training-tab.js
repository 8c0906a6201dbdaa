// Drives Debian's headless Chromium (through playwright-core) against the Training tab and prints
// what a user sees as one JSON line. Run by TrainingTabBrowserTest:
//   node training-tab.js <url> <live|history> <user-data-dir> <timeout-seconds>
// live: waits for the charts with a step, scrolls down, waits for the page's own refresh to show a
// committed checkpoint, and reports whether the scroll position survived; hovers the loss chart.
// history: loads the page once and reports the same fields.
const { chromium } = require('playwright-core');

const [url, mode, userDataDir, timeoutArg] = process.argv.slice(2);
const timeout = Number(timeoutArg || 60) * 1000;

async function state(page) {
  return page.evaluate(() => {
    const q = (s) => document.querySelector(s);
    const summary = q('#danlu-summary');
    const m = summary ? summary.textContent.match(/step (\d+)\/(\d+)/) : null;
    return {
      summary: summary ? summary.textContent : null,
      step: m ? Number(m[1]) : -1,
      maxSteps: m ? Number(m[2]) : -1,
      charts: Array.from(document.querySelectorAll('svg.danlu-chart')).map((s) => s.id),
      linePoints: Array.from(document.querySelectorAll('svg.danlu-chart path.danlu-line, path.danlu-ema'))
        .map((p) => (p.getAttribute('d').match(/[ML]/g) || []).length),
      stepTicks: document.querySelectorAll('#danlu-chart-loss text[text-anchor="middle"]').length,
      checkpoints: Array.from(document.querySelectorAll('tr.danlu-event-checkpoint'))
        .map((r) => r.textContent),
      checkpointMarks: document.querySelectorAll('#danlu-chart-loss .danlu-mark-checkpoint').length,
      evals: document.querySelectorAll('tr.danlu-event-eval').length,
      evalDots: document.querySelectorAll('#danlu-chart-loss circle.danlu-eval').length,
      age: q('#danlu-age') ? q('#danlu-age').textContent : null,
      scrollY: window.scrollY,
      marker: window.danluMarker || null,
    };
  });
}

async function main() {
  // a fresh profile directory per run (playwright passes it as --user-data-dir)
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1200, height: 500 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const out = { mode };
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(timeout);
    await page.goto(url);
    if (mode === 'live') {
      await page.waitForFunction(() => {
        const s = document.querySelector('#danlu-summary');
        return document.querySelector('#danlu-chart-loss') && s && /step [1-9]/.test(s.textContent);
      });
      out.first = await state(page);
      // a marker only this document has: a reload would lose it, the in-place refresh keeps it
      await page.evaluate(() => { window.danluMarker = 'same-document'; window.scrollTo({ top: 300, behavior: 'instant' }); });
      out.scrolledTo = await page.evaluate(() => window.scrollY);
      await page.waitForFunction(() => document.querySelector('tr.danlu-event-checkpoint'));
      out.later = await state(page);
    } else {
      await page.waitForSelector('#danlu-chart-loss');
      out.later = await state(page);
    }
    await page.locator('#danlu-chart-loss').scrollIntoViewIfNeeded();
    const box = await page.locator('#danlu-chart-loss').boundingBox();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
    out.tip = await page.evaluate(() => {
      const t = document.querySelector('#danlu-tip');
      return t && t.style.display === 'block' ? t.textContent : null;
    });
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e && e.stack ? e.stack : String(e)); process.exit(1); });
