// The engine runs here, off the page's main thread, behind a small message
// protocol: {id, type, ...} in, {id, ok, result | error} out.
import init, { Session } from '/pkg/prunelab.js';

const ready = init();
let session = null;

const handlers = {
  async create({ config, device }) {
    session = null;
    session = await Session.create(config, device);
    return {
      info: session.info(),
      train: { points: session.points('train'), labels: session.labels('train') },
      test: { points: session.points('test'), labels: session.labels('test') },
    };
  },
  async train({ steps }) { return session.train(steps); },
  async boundary({ resolution, extent }) { return session.boundary(resolution, extent); },
};

self.onmessage = async ({ data }) => {
  const { id, type, ...args } = data;
  try {
    await ready;
    const result = await handlers[type](args);
    self.postMessage({ id, ok: true, result });
  } catch (e) {
    self.postMessage({ id, ok: false, error: String(e && e.message || e) });
  }
};
