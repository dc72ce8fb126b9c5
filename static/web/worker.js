// The engine runs here, off the page's main thread, behind a small message
// protocol: {id, type, ...args} in, {id, ok, result | error} out. Calls run
// one at a time, in order (the engine's session is single-threaded).

// Two modules, so that the page starts on the small one (docs/benchmarks.md,
// "The first page"): `pkg` is burn's CPU backend alone (~1.5 MB gzipped) and
// runs every CPU session; `pkg-gpu` adds WebGPU (~6 MB gzipped) and is
// fetched only when a session asks for WebGPU and the browser has an adapter.
//
// `?threads=1` (the CIFAR lab): where the page is cross-origin isolated and
// the multi-threaded module was built (./build.sh wasm-threads), the CPU
// backend runs on a pool of Web Workers sharing the module's memory; else
// the single-threaded module (docs/operations.md, "Threads in the page").
const wantThreads = new URL(self.location.href).searchParams.get('threads') === '1';
let cpuPkg = null;
let threads = 1;
async function load() {
  if (wantThreads && self.crossOriginIsolated) {
    try {
      const mt = await import('../pkg-mt/prunelab.js');
      await mt.default();
      threads = Math.max(1, navigator.hardwareConcurrency || 1);
      await mt.initThreadPool(threads);
      cpuPkg = mt;
      return;
    } catch {
      threads = 1; // not built, or the browser refused: one thread
    }
  }
  cpuPkg = await import('../pkg/prunelab.js');
  await cpuPkg.default();
}

// The WebGPU module, loaded once on first need; null while not needed.
let gpuPkg = null;
async function loadGpu() {
  if (!gpuPkg) {
    gpuPkg = import('../pkg-gpu/prunelab.js').then(async (m) => { await m.default(); return m; });
    // Forget a failure; but Chromium also remembers a failed module fetch
    // for the worker's life, so it is a reload (a new worker) that retries.
    gpuPkg.catch(() => { gpuPkg = null; });
  }
  return gpuPkg;
}

// Why WebGPU cannot run here (null: it can), asked once per worker — the
// toy lab makes a new session on every change of a control, and a lost
// device starts a new worker anyway.
let noAdapter = null;
const whyNoAdapter = () => (noAdapter ??= (async () => {
  if (!self.navigator?.gpu) return 'this browser does not offer WebGPU (navigator.gpu is missing)';
  const adapter = await self.navigator.gpu.requestAdapter().catch(() => null);
  return adapter ? null : 'no WebGPU adapter: navigator.gpu.requestAdapter() found none';
})());

// Which module a session on `device` (auto, webgpu or cpu) runs in. Without
// a WebGPU adapter the GPU module is not fetched at all: `auto` runs on the
// CPU module with the reason in `fallback`, and `webgpu` fails with it.
async function moduleFor(device) {
  if (device === 'cpu') return { pkg: cpuPkg, device };
  let reason = await whyNoAdapter();
  if (!reason) {
    try {
      return { pkg: await loadGpu(), device };
    } catch (e) {
      reason = `the WebGPU module did not load — if ./build.sh serve is still building it, reload when it is done (${e?.message || e})`;
    }
  }
  if (device === 'webgpu') throw new Error(`WebGPU is not available: ${reason}. Use a browser with WebGPU enabled, or choose the CPU.`);
  return { pkg: cpuPkg, device: 'cpu', fallback: reason };
}

// A CPU session that stands in for WebGPU says why, as the GPU module's own
// fallback does ("…: WebGPU is unavailable (reason)"; static/web/toy.js shows it).
function withFallback(info, fallback) {
  if (fallback) info.device = `${info.device}: WebGPU is unavailable (${fallback})`;
  return info;
}

// Opens a session with `open(pkg, device)`. Where the GPU module itself fell
// back to the CPU (an adapter that wgpu could not open), the session moves
// to the CPU module: the one the warm-up optimises and the CIFAR lab's
// threads run in; the GPU module's reason goes with it.
async function openSession(device, open) {
  const chosen = await moduleFor(device);
  let opened = await open(chosen.pkg, chosen.device);
  if (chosen.pkg !== cpuPkg && opened.info().kind === 'cpu') {
    const why = /WebGPU is unavailable \((.*)\)$/s.exec(opened.info().device)?.[1] ?? 'WebGPU could not be opened';
    opened.free();
    opened = await open(cpuPkg, 'cpu');
    return { session: opened, fallback: why, pkg: cpuPkg };
  }
  return { session: opened, fallback: chosen.fallback, pkg: chosen.pkg };
}

// Keep a handle on the WebGPU devices wgpu creates, to notice a loss (and,
// for the tests, to cause one: `loseDevice`).
const devices = [];
if (self.GPUAdapter) {
  const request = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await request.apply(this, args);
    devices.push(device);
    device.lost.then((info) => self.postMessage({ event: 'lost', reason: info.message || info.reason || 'lost' }));
    return device;
  };
}

// Count the engine's waits on the GPU: a read back stalls the GPU until its
// queue is done, and a frame should need one (`frame`'s `reads`). Buffer
// maps started while others are outstanding are one wait (a transaction
// maps each of its tensors' buffers at once).
let gpuWaits = 0;
let mapping = 0;
if (self.GPUBuffer) {
  const map = GPUBuffer.prototype.mapAsync;
  GPUBuffer.prototype.mapAsync = function (...args) {
    if (mapping === 0) gpuWaits += 1;
    mapping += 1;
    const done = () => { mapping -= 1; };
    const mapped = map.apply(this, args);
    mapped.then(done, done);
    return mapped;
  };
}

const ready = load();
let session = null;
let queue = Promise.resolve();
let waiting = 0; // requests queued or running

// V8 runs a fresh module's functions in its baseline compiler first and
// optimises the hot ones in the background: a toy network's first ~1.5 s of
// training run ~6x slower than the rest (docs/benchmarks.md). So, while the
// page waits for a person to press Train, the worker trains a throwaway copy
// of the new CPU session for a moment — only when no request waits, one
// epoch at a time — and the optimised code is there when training starts.
// It never touches `session`; it ends for good once the page trains.
const warmup = { state: 'idle', epochs: 0, ms: [], budgetMs: 5000 };
let warmSession = null;
const warming = () => warmup.state === 'waiting' || warmup.state === 'running';

function startWarmup(config, csv) {
  if (warmup.state !== 'idle' && warmup.state !== 'waiting') return;
  warmup.state = 'waiting';
  const step = async () => {
    if (!warming()) return;
    if (waiting) return void setTimeout(step, 50); // the page's requests first
    queue = queue.then(async () => {
      if (!warming()) return;
      try {
        warmSession ??= await cpuPkg.Session.create(config, 'cpu', csv ?? undefined);
        warmup.state = 'running';
        const e0 = performance.now();
        await warmSession.train(warmSession.info().steps_per_epoch);
        warmup.ms.push(performance.now() - e0);
        warmup.epochs += 1;
      } catch {
        return finishWarmup('failed'); // only a head start; the page is unaffected
      }
      if (warmup.state !== 'running') return; // stopped meanwhile
      const spent = warmup.ms.reduce((a, b) => a + b, 0);
      if (settled()) finishWarmup('settled');
      else if (spent >= warmup.budgetMs) finishWarmup('spent');
      else setTimeout(step, 0);
    });
  };
  setTimeout(step, 0);
}

// Optimised: the last five epochs each under 0.4 of the baseline tier's
// pace (the median of epochs 2–6; the first also pays for compiling).
function settled() {
  const ms = warmup.ms;
  if (ms.length < 11) return false;
  const baseline = ms.slice(1, 6).sort((a, b) => a - b)[2];
  return ms.slice(-5).every((m) => m < 0.4 * baseline);
}

function finishWarmup(state) {
  if (warmup.state !== 'idle' && !warming()) return;
  const started = warmup.state !== 'idle';
  warmup.state = state;
  warmSession?.free();
  warmSession = null;
  if (started) self.postMessage({ event: 'warmup', ...warmup });
}

const handlers = {
  async create({ config, device, csv, snapshot, warm }) {
    session = null;
    const opened = await openSession(device, (pkg, d) => pkg.Session.create(config, d, csv ?? undefined, snapshot ?? undefined));
    session = opened.session;
    if (warm && session.info().kind === 'cpu') startWarmup(config, csv);
    return describe(opened.fallback);
  },
  async createCifar({ config, device, names, contents }) {
    session = null;
    const opened = await openSession(device, (pkg, d) => pkg.Session.createCifar(config, d, names, contents));
    session = opened.session;
    const info = withFallback(session.info(), opened.fallback);
    return { info, threads: info.kind === 'cpu' && opened.pkg === cpuPkg ? threads : null };
  },
  // One animation frame in one round trip: train `steps` (if any), then what
  // the page draws — the boundary (or the selected unit's map), every hidden
  // unit's map, the network. On WebGPU the engine reads it all back at once;
  // `reads` counts the GPU waits it took.
  async frame({ steps, resolution, extent, unit, unitResolution }) {
    const before = gpuWaits;
    const frame = await session.frame(steps, resolution, extent, unitResolution, unit?.layer, unit?.unit);
    return { ...frame, reads: gpuWaits - before };
  },
  // The CIFAR lab's frame, likewise in one round trip: `steps` of training
  // (if any), then its views — the layer widths, the coupled groups and
  // `examples` test images with their predictions.
  async cifarFrame({ steps, examples }) {
    const report = steps ? await session.train(steps) : null;
    return { report, widths: session.widths(), groups: session.groups(), examples: await session.examples(examples) };
  },
  // A cut in one round trip: the method's scores (the engine keeps them
  // until the model changes), then the cut of `amount`.
  async prune({ method, options, amount }) {
    await session.score(method, options);
    return session.prune(amount);
  },
  finetune: ({ epochs }) => session.finetune(epochs),
  startGated: ({ macs, options }) => session.startGated(macs, options),
  info: () => session.info(),
  latency: ({ batch, repeats }) => session.latency(batch, repeats),
  modelFile: () => session.modelFile(),
  importModel: ({ bytes, name }) => session.importModel(bytes, name),
  exportModel: ({ format }) => session.exportModel(format),
  methods: () => cpuPkg.methods(),
  loseDevice: () => { for (const d of devices) d.destroy(); return devices.length; },
};

function describe(fallback) {
  return {
    info: withFallback(session.info(), fallback),
    train: { points: session.points('train'), labels: session.labels('train') },
    test: { points: session.points('test'), labels: session.labels('test') },
  };
}

// Requests that train end the warm-up: from here on training warms itself.
const trains = ({ type, steps, epochs }) =>
  ((type === 'frame' || type === 'cifarFrame') && steps > 0) || (type === 'finetune' && epochs > 0) || type === 'startGated';

self.onmessage = ({ data }) => {
  const { id, type, ...args } = data;
  if (trains(data)) finishWarmup('stopped');
  waiting += 1;
  queue = queue.then(async () => {
    try {
      await ready;
      if (!handlers[type]) throw new Error(`unknown request ${type}`);
      if (!['create', 'createCifar', 'loseDevice', 'methods'].includes(type) && !session) throw new Error('no session yet');
      const result = await handlers[type](args);
      self.postMessage({ id, ok: true, result });
    } catch (e) {
      const error = String((e && e.message) || e);
      // A lost GPU surfaces as an error mentioning the device; the page decides what to do.
      self.postMessage({ id, ok: false, error, lost: /device (was )?lost|GPUDevice|destroyed/i.test(error) });
    } finally {
      waiting -= 1;
    }
  });
};
