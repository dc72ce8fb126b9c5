// The page's CIFAR lab, timed in headless Chromium on the CPU path: one
// training epoch of the small CNN on generated CIFAR-format images (no
// dataset needed), from the click to the epoch's end. Not a test: figures go
// to docs/benchmarks.md.
//   node bench/cifar-lab.mjs [images]     (after ./build.sh wasm)
import { browser, cifarFiles, open, serve } from '../tests/browser/harness.mjs';

const images = Number(process.argv[2] || 1000);
const files = cifarFiles(images, 200);
const server = await serve();
const ctx = await browser({ webgpu: false });
try {
  const { page } = await open(ctx, `${server.url}/#lab=cifar&device=cpu&subset=${images}&cepochs=1&cmethod=l1`);
  await page.waitForSelector('#cifar-files:enabled', { state: 'attached', timeout: 120_000 });
  await page.setInputFiles('#cifar-files', files);
  await page.waitForFunction(() => window.__prunelab.cifar.state === 'ready', null, { timeout: 240_000 });
  const t0 = Date.now();
  await page.click('#ctrain');
  await page.waitForFunction(() => window.__prunelab.cifar.accuracies.length >= 1 && window.__prunelab.cifar.state === 'ready', null, { timeout: 600_000 });
  const seconds = (Date.now() - t0) / 1000;
  console.log(JSON.stringify({ images, epoch_seconds: seconds, images_per_s: +(images / seconds).toFixed(1) }));
} finally {
  await ctx.close();
  server.stop();
}
