// The engine runs here, off the page's main thread, behind a small message
// protocol: {id, type, ...args} in, {id, ok, result | error} out. Calls run
// one at a time, in order (the engine's session is single-threaded).
import init, { Session, forgetGpu, methods } from '/pkg/prunelab.js';

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

// Count GPU read backs (buffer maps): each stalls the GPU, and a frame
// should need few (see `frame`'s `reads`).
let reads = 0;
if (self.GPUBuffer) {
  const map = GPUBuffer.prototype.mapAsync;
  GPUBuffer.prototype.mapAsync = function (...args) {
    reads += 1;
    return map.apply(this, args);
  };
}

const ready = init();
let session = null;
let queue = Promise.resolve();

const handlers = {
  async create({ config, device, csv, snapshot }) {
    session = null;
    session = await Session.create(config, device, csv ?? undefined, snapshot ?? undefined);
    return describe();
  },
  async createCifar({ config, device, names, contents }) {
    session = null;
    session = await Session.createCifar(config, device, names, contents);
    return { info: session.info() };
  },
  train: ({ steps }) => session.train(steps),
  boundary: ({ resolution, extent }) => session.boundary(resolution, extent),
  unitMap: ({ layer, unit, resolution, extent }) => session.unitMap(layer, unit, resolution, extent),
  network: () => session.network(),
  // One animation frame in one round trip: train `steps` (if any), then what
  // the page draws — the boundary (or the selected unit's map), every hidden
  // unit's map, the network.
  async frame({ steps, resolution, extent, unit, unitResolution }) {
    const before = reads;
    const report = steps ? await session.train(steps) : null;
    const trainReads = reads - before;
    // The views in one read back (one transaction in the engine).
    const views = await session.views(resolution, extent, unitResolution, unit?.layer, unit?.unit);
    return { report, ...views, reads: { train: trainReads, views: reads - before - trainReads } };
  },
  score: ({ method, options }) => session.score(method, options),
  prune: ({ amount }) => session.prune(amount),
  finetune: ({ epochs }) => session.finetune(epochs),
  startGated: ({ macs, options }) => session.startGated(macs, options),
  info: () => session.info(),
  widths: () => session.widths(),
  groups: () => session.groups(),
  examples: ({ n }) => session.examples(n),
  latency: ({ batch, repeats }) => session.latency(batch, repeats),
  modelFile: () => session.modelFile(),
  forgetGpu: () => forgetGpu(),
  methods: () => methods(),
  loseDevice: () => { for (const d of devices) d.destroy(); return devices.length; },
};

function describe() {
  return {
    info: session.info(),
    train: { points: session.points('train'), labels: session.labels('train') },
    test: { points: session.points('test'), labels: session.labels('test') },
  };
}

self.onmessage = ({ data }) => {
  const { id, type, ...args } = data;
  queue = queue.then(async () => {
    try {
      await ready;
      if (!handlers[type]) throw new Error(`unknown request ${type}`);
      if (!['create', 'createCifar', 'forgetGpu', 'loseDevice', 'methods'].includes(type) && !session) throw new Error('no session yet');
      const result = await handlers[type](args);
      self.postMessage({ id, ok: true, result });
    } catch (e) {
      const error = String((e && e.message) || e);
      // A lost GPU surfaces as an error mentioning the device; the page decides what to do.
      self.postMessage({ id, ok: false, error, lost: /device (was )?lost|GPUDevice|destroyed/i.test(error) });
    }
  });
};
