// Headless-Chromium tests of the playground. Each test gets a fresh browser;
// screenshots land in tests/artifacts/ for a person to look at.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, ROOT, browser, check, mean, open, serve, waitForView } from './harness.mjs';

if (!existsSync('/usr/bin/chromium') && !process.env.CHROMIUM) {
  console.log('SKIPPED: browser tests need Debian\'s chromium (./build.sh test installs it)');
  process.exit(0);
}
if (!existsSync(path.join(ROOT, 'static/pkg/prunelab_bg.wasm'))) {
  console.error('static/pkg is missing: run ./build.sh wasm first');
  process.exit(1);
}

const server = await serve();
// Loss trajectories of the same seeded run on each device, compared at the end.
const runs = {};
const TOY = '#dataset=gaussians&hidden=8&lr=0.05&epochs=6&seed=3&autoplay=1';

const tests = {
  async 'the page is served with wasm MIME and a strict CSP'() {
    const page = await fetch(`${server.url}/`);
    const csp = page.headers.get('content-security-policy');
    check(csp && csp.includes("default-src 'self'") && csp.includes("connect-src 'self'"), `CSP: ${csp}`);
    const wasm = await fetch(`${server.url}/pkg/prunelab_bg.wasm`);
    check(wasm.headers.get('content-type') === 'application/wasm', `wasm MIME: ${wasm.headers.get('content-type')}`);
    await wasm.arrayBuffer();
    const escape = await fetch(`${server.url}/..%2f..%2fCargo.toml`);
    check(escape.status === 404, `path traversal refused (${escape.status})`);
  },

  async 'the toy MLP trains on WebGPU and the boundary is redrawn'() {
    const ctx = await browser({ webgpu: true });
    try {
      const { page, requests, errors } = await open(ctx, `${server.url}/${TOY}`);
      const view = await waitForView(page, 'done');
      check(view.kind === 'webgpu', `adapter: ${view.kind} (${view.device})`);
      const losses = view.losses;
      check(losses.length >= 20, `${losses.length} steps`);
      const first = mean(losses.slice(0, 5)), last = mean(losses.slice(-5));
      check(last < 0.6 * first, `loss fell: ${first.toFixed(3)} → ${last.toFixed(3)}`);
      check(view.accuracies.at(-1) > 0.8, `test accuracy ${view.accuracies.at(-1)}`);
      check(view.boundaryFrames >= 3, `${view.boundaryFrames} boundary frames`);
      check(!(await page.isVisible('#notice')), 'no fallback notice on WebGPU');
      const origin = new URL(server.url).origin;
      check(requests.every((u) => u.startsWith(origin)), `only same-origin requests: ${requests.filter((u) => !u.startsWith(origin))}`);
      check(errors.length === 0, `console errors: ${errors.join(' | ')}`);
      runs.webgpu = view.losses;
      await page.screenshot({ path: path.join(ARTIFACTS, 'toy-webgpu.png') });
      return `device "${view.device}", loss ${first.toFixed(3)} → ${last.toFixed(3)}`;
    } finally { await ctx.close(); }
  },

  async 'without a WebGPU adapter the page falls back to the CPU and says so'() {
    const ctx = await browser({ webgpu: false });
    try {
      const { page } = await open(ctx, `${server.url}/${TOY}`);
      const view = await waitForView(page, 'done');
      check(view.kind === 'cpu', `fell back to ${view.kind}`);
      check(await page.isVisible('#notice'), 'a notice is shown');
      const notice = await page.textContent('#notice');
      check(/WebGPU is not available/.test(notice), `notice: ${notice}`);
      check(mean(view.losses.slice(-5)) < mean(view.losses.slice(0, 5)), 'the loss fell on the CPU too');
      runs.cpu = view.losses;
      await page.screenshot({ path: path.join(ARTIFACTS, 'toy-cpu-fallback.png') });
      return `device "${view.device}"`;
    } finally { await ctx.close(); }
  },
};

tests['WebGPU and the CPU compute the same training run (forward and backward)'] = async () => {
  const { webgpu, cpu } = runs;
  check(webgpu && cpu, 'both runs finished');
  check(webgpu.length === cpu.length, `${webgpu.length} vs ${cpu.length} steps`);
  const diff = Math.max(...webgpu.map((l, i) => Math.abs(l - cpu[i]) / Math.max(1e-3, Math.abs(cpu[i]))));
  check(diff < 1e-3, `largest relative loss difference ${diff.toExponential(2)}`);
  return `${cpu.length} steps, largest relative difference ${diff.toExponential(2)}`;
};

let failed = 0;
const only = process.argv[2];
for (const [name, test] of Object.entries(tests)) {
  if (only && !name.includes(only)) continue;
  const t0 = Date.now();
  try {
    const note = await test();
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? ` — ${note}` : ''}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
server.stop();
console.log(failed ? `${failed} browser test(s) failed` : 'all browser tests passed');
process.exit(failed ? 1 : 0);
