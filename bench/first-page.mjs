// How long the page takes to become ready, in headless Chromium. Not a
// test: figures go to docs/benchmarks.md ("The first page"). After
// ./build.sh wasm (or ./build.sh site DIR):
//   node bench/first-page.mjs [loads] [--site DIR] [--webgpu]
// opens the page `loads` times (default 5) in one browser profile: the first
// load with an empty cache, the others with a warm one (the browser's HTTP
// cache and V8's cache of compiled wasm). For each load: milliseconds from
// navigation to the toy lab's 'ready' (its session created, the first
// boundary drawn), and the wasm modules the page requested. `--site DIR`
// serves the static site with Python's server instead of prunelab serve;
// `--webgpu` opens it with `#device=webgpu` (the WebGPU module).
import { browser, serve, serveSite } from '../tests/browser/harness.mjs';

const args = process.argv.slice(2);
const at = args.indexOf('--site');
const site = at < 0 ? null : args.splice(at, 2)[1];
if (at >= 0 && !site) throw new Error('--site needs the folder ./build.sh site wrote');
const webgpu = args.includes('--webgpu');
const loads = Number(args.find((a) => /^\d+$/.test(a)) || 5);

const server = site ? await serveSite(site) : await serve();
const ctx = await browser({ webgpu });
try {
  for (let i = 0; i < loads; i++) {
    const page = await ctx.newPage();
    const wasm = [];
    page.on('request', (r) => { if (r.url().endsWith('.wasm')) wasm.push(r.url()); });
    const t0 = Date.now();
    await page.goto(`${server.url}/${webgpu ? '#device=webgpu' : ''}`, { waitUntil: 'commit' });
    await page.waitForFunction(() => window.__prunelab?.state === 'ready', null, { timeout: 120_000, polling: 20 });
    const ms = Date.now() - t0;
    const kind = await page.evaluate(() => window.__prunelab.kind);
    const modules = wasm.map((u) => new URL(u).pathname.split('/').slice(-2).join('/'));
    console.log(JSON.stringify({ load: i + 1, cache: i === 0 ? 'empty' : 'warm', ready_ms: ms, kind, modules }));
    await page.close();
  }
} finally {
  await ctx.close();
  server.stop();
}
