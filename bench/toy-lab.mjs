// The page's own toy lab, timed in headless Chromium (CPU path): epochs per
// second on TensorFlow Playground's benchmark setting (spiral, 2 hidden
// layers 4,2 tanh, batch 10, 250 training points), from the first training
// frame to the last epoch. Not a test: figures go to docs/benchmarks.md.
//   node bench/toy-lab.mjs [epochs]     (after ./build.sh wasm)
import { ARTIFACTS, browser, open, serve } from '../tests/browser/harness.mjs';

const epochs = Number(process.argv[2] || 200);
const server = await serve();
const ctx = await browser({ webgpu: false });
try {
  const url = `${server.url}/#device=cpu&dataset=spiral&hidden=4,2&activation=tanh&batch=10&points=250&lr=0.03&epochs=${epochs}&seed=1&autoplay=1`;
  const { page } = await open(ctx, url);
  await page.waitForFunction(() => window.__prunelab?.state === 'training', null, { timeout: 120_000 });
  const t0 = Date.now();
  await page.waitForFunction(() => window.__prunelab.state === 'done', null, { timeout: 600_000 });
  const seconds = (Date.now() - t0) / 1000;
  const view = await page.evaluate(() => window.__prunelab);
  console.log(JSON.stringify({
    epochs, seconds, epochs_per_s: +(epochs / seconds).toFixed(2),
    test_accuracy: view.accuracies.at(-1), device: view.device,
  }));
  void ARTIFACTS;
} finally {
  await ctx.close();
  server.stop();
}
