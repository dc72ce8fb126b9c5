// The page's own toy lab, timed in headless Chromium (CPU path). Not a
// test: figures go to docs/benchmarks.md. After ./build.sh wasm:
//   node bench/toy-lab.mjs [epochs]
//     epochs per second on TensorFlow Playground's benchmark setting (spiral,
//     2 hidden layers 4,2 tanh, batch 10, 250 training points), from the
//     first training frame to the last epoch;
//   node bench/toy-lab.mjs --to90 [seeds]
//     seconds from the first training frame to 90% test accuracy on
//     Playground's spiral (tfp-spiral, no noise) with 2 hidden layers 8,8
//     relu, batch 10, 250 training points, the page's default optimizer and
//     initialisation, for seeds 1..seeds; a third argument adds settings,
//     e.g. `init=default&lr=0.03` (the page's earlier defaults);
//   node bench/toy-lab.mjs --defaults [seeds]
//     seconds from the first training frame to 95% test accuracy with the
//     page's defaults as a first visit gets them (the spiral, Train pressed),
//     for seeds 1..seeds; the first-use target is 10 s;
//   ... --after S
//     press Train S seconds after the page is ready instead of at once.
import { browser, open, serve } from '../tests/browser/harness.mjs';

// `--webgpu` (last argument): the same on WebGPU (here: SwiftShader, a CPU
// emulation of a GPU — a check of the read-back count, not of GPU speed).
const webgpu = process.argv.at(-1) === '--webgpu';
if (webgpu) process.argv.pop();
// `--after S` (last two arguments): press Train S seconds after the page is
// ready, as a person does, instead of at once (`autoplay`); the worker uses
// the wait to warm V8's optimiser (static/web/worker.js). Without it the clock
// starts the moment the page is ready.
const afterAt = process.argv.indexOf('--after');
const after = afterAt > 0 ? Number(process.argv[afterAt + 1]) : null;
if (afterAt > 0) process.argv.splice(afterAt, 2);

// Open `url` and start training: at once, or `after` seconds after ready.
async function start(url) {
  const { page } = await open(ctx, after === null ? `${url}&autoplay=1` : url);
  if (after !== null) {
    await page.waitForFunction(() => window.__prunelab?.state === 'ready', null, { timeout: 120_000 });
    await page.waitForTimeout(after * 1000);
    await page.click('#play');
  }
  await page.waitForFunction(() => window.__prunelab?.state === 'training', null, { timeout: 120_000 });
  return page;
}
const to90 = process.argv[2] === '--to90';
const defaults = process.argv[2] === '--defaults';
const server = await serve();
const ctx = await browser({ webgpu });
const device = webgpu ? 'webgpu' : 'cpu';
try {
  if (defaults) {
    const seeds = Number(process.argv[3] || 3);
    for (let seed = 1; seed <= seeds; seed++) {
      const page = await start(`${server.url}/#device=${device}${seed === 1 ? '' : `&seed=${seed}`}`);
      const t0 = Date.now();
      const reached = await page.waitForFunction(() => {
        const i = window.__prunelab.accuracies.findIndex((a) => a >= 0.95);
        return i >= 0 ? i + 1 : false;
      }, null, { timeout: 60_000, polling: 'raf' }).then((h) => h.jsonValue(), () => null);
      const seconds = (Date.now() - t0) / 1000;
      // Where it is at the target's 10 s (one epoch's test accuracy moves by a point or two).
      await page.waitForTimeout(Math.max(0, 10_000 - (Date.now() - t0)));
      const at10 = await page.evaluate(() => window.__prunelab.accuracies.slice(-20));
      console.log(JSON.stringify({ seed, epoch_at_95: reached, seconds: reached ? seconds : null,
        epochs_at_10s: await page.evaluate(() => window.__prunelab.accuracies.length),
        last_20_epochs_at_10s: { min: Math.min(...at10), mean: +(at10.reduce((a, b) => a + b, 0) / at10.length).toFixed(4) } }));
      await page.close();
    }
  } else if (to90) {
    const seeds = Number(process.argv[3] || 3);
    const extra = process.argv[4] ? `&${process.argv[4]}` : '';
    for (let seed = 1; seed <= seeds; seed++) {
      const page = await start(`${server.url}/#device=${device}&dataset=tfp-spiral&noise=0&hidden=8,8&activation=relu&batch=10&points=250&epochs=600&seed=${seed}${extra}`);
      const t0 = Date.now();
      const reached = await page.waitForFunction(() => {
        const v = window.__prunelab;
        const i = v.accuracies.findIndex((a) => a >= 0.9);
        return i >= 0 ? i + 1 : (v.state === 'done' ? -1 : false);
      }, null, { timeout: 120_000, polling: 'raf' }).then((h) => h.jsonValue());
      const seconds = (Date.now() - t0) / 1000;
      console.log(JSON.stringify({ seed, epoch_at_90: reached > 0 ? reached : null, seconds: reached > 0 ? seconds : null }));
      await page.close();
    }
  } else {
    const epochs = Number(process.argv[2] || 200);
    const page = await start(`${server.url}/#device=${device}&dataset=spiral&hidden=4,2&activation=tanh&init=default&batch=10&points=250&lr=0.03&epochs=${epochs}&seed=1`);
    const t0 = Date.now();
    await page.waitForFunction(() => window.__prunelab.state === 'done', null, { timeout: 600_000 });
    const seconds = (Date.now() - t0) / 1000;
    const view = await page.evaluate(() => window.__prunelab);
    console.log(JSON.stringify({
      epochs, seconds, epochs_per_s: +(epochs / seconds).toFixed(2),
      test_accuracy: view.accuracies.at(-1), device: view.device, timing: view.timing, warmup: view.warmup,
    }));
  }
} finally {
  await ctx.close();
  server.stop();
}
