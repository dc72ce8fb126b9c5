// The CIFAR lab as a first visit gets it: its default data size, model,
// epochs and test images on the real CIFAR-10, on the CPU module, in
// headless Chromium. Times the training and the comparison (the default
// methods at the default amount) and prints each accuracy with its 95%
// interval on the lab's test images. Not a test: figures go to
// docs/benchmarks.md ("The CIFAR lab's defaults").
//   node bench/cifar-defaults.mjs [seed] [--single] [extra settings, e.g. subset=8000&cepochs=5]
// --single refuses the multi-threaded module (static/pkg-mt).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT, browser, open, serve } from '../tests/browser/harness.mjs';

const single = process.argv.includes('--single');
const args = process.argv.slice(2).filter((a) => a !== '--single');
const seed = Number(args[0] || 1);
const extra = args[1] ? `&${args[1]}` : '';
const real = [path.join(ROOT, '../shared/data/cifar-10-batches-bin'), path.join(ROOT, 'data/cifar-10-batches-bin')]
  .find((d) => existsSync(path.join(d, 'test_batch.bin')));
if (!real) {
  console.error('no CIFAR-10 here: run `prunelab data fetch cifar10` first');
  process.exit(1);
}
const server = await serve();
const ctx = await browser({ webgpu: false });
if (single) await ctx.route('**/pkg-mt/**', (route) => route.abort());
const interval = (p, n) => 1.96 * Math.sqrt((p * (1 - p)) / n);
try {
  const { page } = await open(ctx, `${server.url}/#lab=cifar&device=cpu&seed=${seed}${extra}`);
  await page.waitForSelector('#cifar-files:enabled', { state: 'attached', timeout: 120_000 });
  await page.setInputFiles('#cifar-files', ['data_batch_1.bin', 'test_batch.bin'].map((f) => path.join(real, f)));
  await page.waitForFunction(() => ['error', 'ready'].includes(window.__prunelab.cifar.state), null, { timeout: 240_000 });
  const estimate = await page.textContent('#cestimate');
  const t0 = Date.now();
  await page.click('#ctrain');
  await page.waitForFunction(() => window.__prunelab.cifar.error || (window.__prunelab.cifar.progress && window.__prunelab.cifar.state === 'ready'), null, { timeout: 900_000 });
  const train = (Date.now() - t0) / 1000;
  const t1 = Date.now();
  await page.click('#compare');
  await page.waitForFunction(() => window.__prunelab.cifar.error || (window.__prunelab.cifar.compared && window.__prunelab.cifar.state === 'ready'), null, { timeout: 900_000 });
  const compare = (Date.now() - t1) / 1000;
  const v = (await page.evaluate(() => window.__prunelab)).cifar;
  if (v.error) throw new Error(v.error);
  const settings = await page.evaluate(() => location.hash);
  // Each point the chart drew: accuracy ± its 95% interval, in points.
  const shown = Object.fromEntries(v.points.map((p) => [p.label, `${(100 * p.accuracy).toFixed(1)} ± ${(100 * interval(p.accuracy, p.n)).toFixed(1)}`]));
  console.log(JSON.stringify({
    seed, settings, threads: v.threads, estimate, train_seconds: +train.toFixed(1), compare_seconds: +compare.toFixed(1),
    images_per_s: v.progress.imagesPerSecond, test_images: v.points[0]?.n, accuracies: shown,
  }));
} finally {
  await ctx.close();
  server.stop();
}
