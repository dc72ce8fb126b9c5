// One engine-facing session for either lab: the training history (the
// engine's own step and epoch events), the busy guard, the host snapshot that
// lets a lost GPU resume, and pruning in one round trip (the engine keeps a
// method's scores until the model changes, so asking again is free). Both labs
// use it; it publishes the history to the mirror (`publishTo`).
export function labSession(engine, publishTo) {
  let losses = [];
  let accuracies = [];
  let busy = false;
  let snapshot = null;   // the model after an epoch, kept on the host
  let snapshotAt = 0;    // when it was taken (performance.now())

  return {
    get losses() { return losses; },
    get accuracies() { return accuracies; },
    get snapshot() { return snapshot; },

    /** A new model: no history; the snapshot stays only when resuming from it. */
    reset({ keepSnapshot = false } = {}) {
      losses = [];
      accuracies = [];
      if (!keepSnapshot) { snapshot = null; snapshotAt = 0; }
      publishTo({ losses, accuracies });
    },

    /** Adds a training report's events to the history; returns its epochs. */
    record(report) {
      const epochs = report.events.filter((e) => e.type === 'epoch');
      losses.push(...report.events.filter((e) => e.type === 'step').map((e) => e.loss));
      for (const e of epochs) accuracies.push(e.test_accuracy);
      return epochs;
    },

    /** Runs `f` unless a guarded call is running; false when refused. */
    async guard(f) {
      if (busy) return false;
      busy = true;
      try {
        await f();
      } finally {
        busy = false;
      }
      return true;
    },

    /** A host copy of the model at most every 2 s, so a lost GPU costs at
     *  most that much progress (a copy per epoch cost as much as the epoch).
     *  Queued behind the call in flight, not waited for; kept only while
     *  `current()` still says the session is the page's. */
    keepSnapshot(current) {
      if (performance.now() - snapshotAt <= 2000) return;
      snapshotAt = performance.now();
      engine.call('modelFile').then((file) => { if (current()) snapshot = file; }, () => {});
    },

    /** `method`'s cut of `amount` (its options: a partial `[prune]` table). */
    prune(method, options, amount) {
      return engine.call('prune', { method, options, amount });
    },
  };
}
