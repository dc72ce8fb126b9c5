// What the page shows, mirrored as `window.__prunelab` for the browser tests
// and the benchmarks. Written in one place — here, through `publish` — and
// read-only from outside: the labs keep their own state and publish what
// changed, so nothing reads its state back from the mirror.
const data = {
  state: 'starting', device: null, kind: null, error: null,
  losses: [], accuracies: [], boundaryFrames: 0, gates: [], pruned: null, network: [], params: 0,
  cifar: { state: 'empty', losses: [], accuracies: [] },
};

const readOnly = (target) => new Proxy(target, {
  get(t, key) {
    const value = Reflect.get(t, key);
    return value && typeof value === 'object' ? readOnly(value) : value;
  },
  set() { throw new TypeError('window.__prunelab is read-only: the page writes it through publish() (static/web/mirror.js)'); },
  deleteProperty() { return false; },
  defineProperty() { return false; },
});

window.__prunelab = readOnly(data);

/** Merges `patch` into the mirror: the toy lab's and the page's figures, or,
 *  with `lab = 'cifar'`, the CIFAR lab's. */
export function publish(patch, lab = null) {
  Object.assign(lab ? data[lab] : data, patch);
}
