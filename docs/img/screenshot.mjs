// Takes the README's screenshot of `go tool trace` (docs/img/go-tool-trace.png)
// with a headless Chromium driven over the DevTools protocol: the trace
// viewer imports the trace in JavaScript timers after the page loads, which
// Chromium's --screenshot flag does not wait for.
// usage: node --experimental-websocket screenshot.mjs URL OUT.png [WAIT_MS] [W] [H] [CLIP_H]
// (docs/img/make-screenshot.sh runs it; Node >= 20, chromium.)
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const [url, out, waitMs = '15000', w = '1600', h = '900', clipH = ''] = process.argv.slice(2);
const port = 9300 + Math.floor(Math.random() * 500);
const browser = spawn('chromium', ['--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
  // The trace viewer is built on Web Components v0: without them it shows a
  // warning banner over the timeline.
  '--enable-blink-features=ShadowDOMV0,CustomElementsV0,HTMLImports',
  `--remote-debugging-port=${port}`, `--window-size=${w},${h}`, 'about:blank'], { stdio: 'ignore' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let pages;
for (let i = 0; i < 100 && !pages; i++) {
  await sleep(200);
  try { pages = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json(); } catch { /* not up yet */ }
}
const page = pages.find((p) => p.type === 'page');
const ws = new WebSocket(page.webSocketDebuggerUrl);
await new Promise((r) => ws.addEventListener('open', r));
let next = 1;
const pending = new Map();
ws.addEventListener('message', (ev) => {
  const m = JSON.parse(ev.data);
  if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); }
});
const call = (method, params = {}) => new Promise((r) => {
  const id = next++;
  pending.set(id, r);
  ws.send(JSON.stringify({ id, method, params }));
});
await call('Page.enable');
await call('Page.navigate', { url });
await sleep(Number(waitMs));
// Dismiss the viewer's warning bar about Web Components v0, if any.
await call('Runtime.evaluate', { expression: `(() => {
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'BUTTON' && el.textContent.trim() === 'Hide') { el.click(); return true; }
      if (el.shadowRoot && walk(el.shadowRoot)) return true;
    }
    return false;
  };
  return walk(document);
})()` });
await sleep(1000);
const clip = clipH ? { clip: { x: 0, y: 0, width: Number(w), height: Number(clipH), scale: 1 } } : {};
const shot = await call('Page.captureScreenshot', { format: 'png', ...clip });
writeFileSync(out, Buffer.from(shot.result.data, 'base64'));
ws.close();
browser.kill();
