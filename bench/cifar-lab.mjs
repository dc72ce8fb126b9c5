// The page's CIFAR lab, timed in headless Chromium on the CPU path: one
// training epoch of the small CNN on generated CIFAR-format images (no
// dataset needed), from the click to the epoch's end. Not a test: figures go
// to docs/benchmarks.md.
//   node bench/cifar-lab.mjs [images]     (after ./build.sh wasm)
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { browser, open, serve } from '../tests/browser/harness.mjs';

const images = Number(process.argv[2] || 1000);
const dir = mkdtempSync(path.join(tmpdir(), 'cifar-bench-'));
const records = (n, seed) => {
  const out = new Uint8Array(n * 3073);
  let s = seed;
  for (let i = 0; i < n; i++) {
    out[i * 3073] = i % 10;
    for (let p = 1; p < 3073; p++) { s = (s * 1103515245 + 12345) >>> 0; out[i * 3073 + p] = (s >>> 16) & 255; }
  }
  return out;
};
writeFileSync(path.join(dir, 'data_batch_1.bin'), records(images, 1));
writeFileSync(path.join(dir, 'test_batch.bin'), records(200, 2));
const server = await serve();
const ctx = await browser({ webgpu: false });
try {
  const { page } = await open(ctx, `${server.url}/#lab=cifar&device=cpu&subset=${images}&cepochs=1&cmethod=l1`);
  await page.waitForSelector('#cifar-files:enabled', { state: 'attached', timeout: 120_000 });
  await page.setInputFiles('#cifar-files', [path.join(dir, 'data_batch_1.bin'), path.join(dir, 'test_batch.bin')]);
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
