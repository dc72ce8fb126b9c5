// The page's handle on the worker: call(type, args) → Promise of the result.
// Errors carry `lost` when the GPU device went away.
// `threads`: a multi-threaded CPU where the page allows it (static/web/worker.js).
export function startEngine({ onLost = () => {}, onEvent = () => {}, threads = false } = {}) {
  let worker = null;
  let next = 0;
  const pending = new Map();

  function spawn() {
    // Relative to this module, so the page works under any sub-path (a
    // GitHub Pages project site) as well as at a server's root.
    const url = new URL(threads ? 'worker.js?threads=1' : 'worker.js', import.meta.url);
    worker = new Worker(url, { type: 'module' });
    worker.onmessage = ({ data }) => {
      if (data.event === 'lost') return onLost(new Error(`the GPU device was lost: ${data.reason}`));
      if (data.event) return onEvent(data);
      const entry = pending.get(data.id);
      if (!entry) return;
      pending.delete(data.id);
      if (data.ok) entry.resolve(data.result);
      else entry.reject(Object.assign(new Error(data.error), { lost: data.lost }));
    };
    worker.onerror = (e) => {
      for (const { reject } of pending.values()) reject(new Error(e.message || 'the engine worker failed'));
      pending.clear();
    };
  }

  return {
    call(type, args = {}, transfer = []) {
      // Started at the first call: a lab never opened costs no module compile.
      if (!worker) spawn();
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, type, ...args }, transfer);
      });
    },
    /** A fresh worker (after a lost device); callers re-create their session. */
    restart() {
      worker?.terminate();
      for (const { reject } of pending.values()) reject(Object.assign(new Error('engine restarted'), { restarted: true }));
      pending.clear();
      spawn();
    },
  };
}
