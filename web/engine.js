// The page's handle on the worker: call(type, args) → Promise of the result.
export function startEngine() {
  const worker = new Worker('/web/worker.js', { type: 'module' });
  let next = 0;
  const pending = new Map();
  worker.onmessage = ({ data }) => {
    const { resolve, reject } = pending.get(data.id);
    pending.delete(data.id);
    data.ok ? resolve(data.result) : reject(new Error(data.error));
  };
  worker.onerror = (e) => {
    for (const { reject } of pending.values()) reject(new Error(e.message || 'worker failed'));
    pending.clear();
  };
  return {
    call(type, args = {}) {
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, type, ...args });
      });
    },
  };
}
