// The page's CIFAR lab, timed in headless Chromium on the CPU path: one
// training epoch of the small CNN on generated CIFAR-format images (no
// dataset needed), from the click to the epoch's end. Not a test: figures go
// to docs/benchmarks.md.
//   node bench/cifar-lab.mjs [images]     (after ./build.sh wasm)
//   node bench/cifar-lab.mjs [images] [--model resnet20] --prune METHOD AMOUNT
//     then prunes with the lab's slider and times the dense and the pruned
//     network's forward pass at batch 128 (the lab's latency button).
//   ... --single
//     refuses the multi-threaded module (static/pkg-mt), so the lab runs on
//     one thread even where it could use more: the before of a before/after.
import { browser, cifarFiles, open, serve } from '../tests/browser/harness.mjs';

const images = Number(process.argv[2] || 1000);
const prune = process.argv.indexOf('--prune');
const [method, amount] = prune > 0 ? process.argv.slice(prune + 1, prune + 3) : [];
const modelAt = process.argv.indexOf('--model');
const cmodel = modelAt > 0 ? process.argv[modelAt + 1] : 'cnn';
const files = cifarFiles(images, 200);
const server = await serve();
const ctx = await browser({ webgpu: false });
if (process.argv.includes('--single')) await ctx.route('**/pkg-mt/**', (route) => route.abort());
try {
  const { page } = await open(ctx, `${server.url}/#lab=cifar&device=cpu&cmodel=${cmodel}&subset=${images}&cepochs=1&cmethod=l1`);
  await page.waitForSelector('#cifar-files:enabled', { state: 'attached', timeout: 120_000 });
  await page.setInputFiles('#cifar-files', files);
  await page.waitForFunction(() => window.__prunelab.cifar.state === 'ready', null, { timeout: 240_000 });
  const t0 = Date.now();
  await page.click('#ctrain');
  await page.waitForFunction(() => window.__prunelab.cifar.accuracies.length >= 1 && window.__prunelab.cifar.state === 'ready', null, { timeout: 600_000 });
  const seconds = (Date.now() - t0) / 1000;
  const { device, threads } = await page.evaluate(() => window.__prunelab.cifar);
  const row = { model: cmodel, images, epoch_seconds: seconds, images_per_s: +(images / seconds).toFixed(1), device, threads };
  if (method) {
    await page.selectOption('#cmethod', method);
    await page.locator('#camount').fill(String(amount));
    await page.click('#cprune');
    await page.waitForFunction(() => window.__prunelab.cifar.pruned && window.__prunelab.cifar.state === 'ready', null, { timeout: 240_000 });
    await page.click('#latency');
    await page.waitForFunction(() => window.__prunelab.cifar.latency && window.__prunelab.cifar.state === 'ready', null, { timeout: 240_000 });
    const l = await page.evaluate(() => window.__prunelab.cifar.latency);
    const speedup = l.dense_ms / l.shown_ms, macs = l.dense_macs / l.shown_macs;
    Object.assign(row, { method, amount: +amount, batch: l.batch, dense_ms: l.dense_ms, pruned_ms: l.shown_ms,
      speedup: +speedup.toFixed(3), macs_ratio: +macs.toFixed(3), share: +(speedup / macs).toFixed(3) });
  }
  console.log(JSON.stringify(row));
} finally {
  await ctx.close();
  server.stop();
}
