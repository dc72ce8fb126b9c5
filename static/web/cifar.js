// The CIFAR lab: real images, read from the user's own files (nothing is
// uploaded), a small CNN or ResNet-20 trained and pruned in the page, with
// per-layer widths, example predictions, measured latency and a comparison
// of methods on one trained model.
import { drawCurves, drawScatter } from './views/charts.js';
import { drawGates } from './views/gates.js';
import { barAt, coupling, drawWidths } from './views/bars.js';
import { drawExamples } from './views/images.js';
import { cifarConfig, scoreOptions, writeState } from './state.js';
import { publish } from './mirror.js';
import { labSession } from './session.js';
import { $, bind, download, human, modelDownloads, notice, pct, showComparison } from './ui.js';

// Test images shown with their predictions.
const EXAMPLES = 16;
// Training images per second on one thread of the CPU module, before this
// page has measured its own (docs/benchmarks.md, "The CIFAR lab's
// defaults"): what the time estimate starts from.
const PRIOR_RATE = { cnn: 900, resnet20: 55 };
// A training call's length: long enough that the round trip is noise,
// short enough that progress moves.
const CALL_MS = 1500;

// `catalog`: the registry's method names and when each acts (`phases`).
export function cifarLab(engine, state, catalog) {
  const show = (patch) => publish(patch, 'cifar');
  const session = labSession(engine, show);
  let files = null; // {names, contents}
  let info = null;
  let dense = null;
  const results = { comparisons: [], trained: [], pruned: null };
  // The comparison chart's points (the dense model, each method, S1's pass).
  const points = [];
  // The widths chart's bars and the groups behind them (for pointing at one).
  let widths = [];
  let groups = [];

  const setStatus = (phase, text) => {
    show({ state: phase });
    if (text !== undefined) $('cifar-status').textContent = text;
  };
  const enable = (on) => {
    for (const id of ['ctrain', 'cprune', 'cfinetune', 'cs1', 'compare', 'latency']) $(id).disabled = !on;
  };

  async function guard(phase, f) {
    await session.guard(async () => {
      enable(false);
      try {
        setStatus(phase);
        await f();
        setStatus('ready');
      } catch (e) {
        const error = String(e.message || e);
        show({ error });
        setStatus('error', `Error: ${error}`);
      } finally {
        enable(!!info);
      }
    });
  }

  // The dense column shows the model as it trains (until a cut is shown).
  function showDense() {
    $('cacc-dense').textContent = pct(session.accuracies.at(-1));
    $('cparams-dense').textContent = info ? human(info.params) : '–';
    $('cmacs-dense').textContent = info ? human(info.macs) : '–';
    for (const k of ['acc', 'params', 'macs']) $(`c${k}-pruned`).textContent = '–';
  }

  async function load(names, buffers) {
    files = { names, buffers };
    await guard('loading', async () => {
      const contents = buffers.map((b) => new Uint8Array(b.slice(0)));
      const created = await engine.call('createCifar', { config: cifarConfig(state, state.cdataset), device: state.device, names, contents });
      info = created.info;
      dense = null;
      results.pruned = null;
      session.reset();
      showDense();
      show({ kind: info.kind, device: info.device, threads: created.threads, examples: 0 });
      const threads = created.threads > 1 ? ` · ${created.threads} threads` : '';
      $('cifar-status').textContent = `${info.train_examples} training and ${info.test_examples} test images · ${info.model} · ${info.device}${threads}`;
      await refresh();
    });
  }

  // One round trip per update: `steps` of training (if any), then the views.
  async function frame(steps = 0) {
    const views = await engine.call('cifarFrame', { steps, examples: EXAMPLES });
    draw(views);
    return views.report;
  }
  const refresh = () => frame(0);

  function draw({ report, widths: w, groups: g, examples }) {
    if (report) {
      const epochs = session.record(report);
      results.trained.push(...epochs);
      // A cut model that trains on (fine-tuning, a ticket) is the pruned column.
      if (epochs.length) $(results.pruned ? 'cacc-pruned' : 'cacc-dense').textContent = pct(session.accuracies.at(-1));
    }
    drawCurves($('cchart'), session.losses, session.accuracies);
    widths = w;
    groups = g;
    drawWidths($('widths'), widths);
    drawExamples($('examples'), examples, info.classes === 10 ? undefined : []);
    show({ examples: examples.labels.length });
  }

  // Measured training rates (images/s) by model, for the time estimate.
  const rates = {};
  // Runs up to `epochs` epochs in calls of about CALL_MS, saying the rate
  // and the time left after each, until they are done or the run ends;
  // `onReport` sees each call's report (S1's gates and its cut).
  // (`shown`: the epochs the progress line counts, where `epochs` leaves a
  // margin for a run that ends itself, S1's pass.)
  async function train(epochs, onReport = () => false, shown = epochs) {
    const total = epochs * info.steps_per_epoch;
    const batch = info.train_examples / info.steps_per_epoch;
    let done = 0, chunk = Math.min(8, info.steps_per_epoch), seconds = 0;
    while (done < total) {
      const steps = Math.min(chunk, total - done);
      const t0 = performance.now();
      const report = await frame(steps);
      const ms = performance.now() - t0;
      done += steps;
      seconds += ms / 1000;
      chunk = Math.max(1, Math.min(info.steps_per_epoch, Math.round((CALL_MS * steps) / ms)));
      const rate = (done * batch) / seconds;
      rates[state.cmodel] = rate;
      const left = ((total - done) * batch) / rate;
      const progress = { epoch: Math.min(shown, Math.floor(done / info.steps_per_epoch) + (done < total ? 1 : 0)), epochs: shown, imagesPerSecond: Math.round(rate), secondsLeft: Math.round(Math.max(0, left - (epochs - shown) * info.train_examples / rate)) };
      show({ progress });
      $('cprogress').hidden = false;
      const ended = onReport(report) || report.finished || done >= total;
      $('cprogress').textContent = ended
        ? `${progress.epoch} epoch${progress.epoch > 1 ? 's' : ''} in ${Math.round(seconds)} s · ${progress.imagesPerSecond} images/s`
        : `epoch ${progress.epoch} of ${shown} · ${progress.imagesPerSecond} images/s · about ${progress.secondsLeft} s left`;
      if (ended) break;
    }
    showEstimate();
  }

  // What the chosen data, model and epochs will take here: this page's own
  // rate once it has trained that model, the documented one before.
  function showEstimate() {
    const measured = rates[state.cmodel];
    const rate = measured ?? PRIOR_RATE[state.cmodel] ?? PRIOR_RATE.cnn;
    // Each epoch also tests: a measured rate includes it; before, inference
    // is taken at about three times training's rate.
    const seconds = (state.subset * state.cepochs + (measured ? 0 : (state.ctest * state.cepochs) / 3)) / rate;
    const time = seconds < 90 ? `${Math.max(1, Math.round(seconds))} s` : `${Math.round(seconds / 60)} min`;
    $('cestimate').textContent = `Training takes about ${time} here (${state.subset} images × ${state.cepochs} epochs at ${Math.round(rate)} images/s, ${measured ? 'measured in this page' : 'one core of a 2-core server; measured here after the first run'}).`;
  }

  // Where the chosen method acts: S4's lottery and SNIP prune θ₀, and the
  // ticket then trains for the whole budget rather than fine-tuning.
  const atInit = (method) => catalog.phases?.[method] === 'at-init';
  const showPhase = () => {
    const init = atInit(state.cmethod);
    $('cfinetune').textContent = init ? `Train the ticket ${state.cepochs} epochs` : 'Fine-tune 1 epoch';
    $('cphase').textContent = init
      ? `${state.cmethod} prunes at initialisation: it ranks the untrained weights θ₀ (same seed), and the ticket then trains from them.`
      : '';
    $('cphase').hidden = !init;
  };
  showPhase();

  function showReport(report) {
    showComparison(report, 'c', ['acc', 'params', 'macs']);
  }

  const prune = (method, amount) => session.prune(method, scoreOptions(state.cstreams), amount);

  const saveAndEstimate = () => { writeState(state); showEstimate(); };
  bind('cdataset', state, 'cdataset', () => writeState(state));
  bind('subset', state, 'subset', saveAndEstimate, (v) => Math.max(20, Math.floor(v)));
  bind('ctest', state, 'ctest', saveAndEstimate, (v) => Math.max(100, Math.floor(v)));
  bind('cmodel', state, 'cmodel', saveAndEstimate);
  bind('cepochs', state, 'cepochs', saveAndEstimate, (v) => Math.max(1, Math.floor(v)));
  showEstimate();
  bind('cmethod', state, 'cmethod', () => { writeState(state); showPhase(); });
  bind('cstreams', state, 'cstreams', () => writeState(state));
  bind('camount', state, 'camount', () => writeState(state));
  // Every method the engine can rank, from its registry.
  $('compare-methods').replaceChildren(...catalog.methods.map((m) => {
    const label = document.createElement('label');
    const box = Object.assign(document.createElement('input'), { type: 'checkbox', value: m, checked: ['random', 'l1', 'energy'].includes(m) });
    label.append(box, ` ${m}`);
    return label;
  }));

  // Pointing at a bar names what is cut with that group (the residual
  // streams couple a stage's stem or projection, conv2s and readers).
  $('widths').addEventListener('mousemove', (e) => {
    const i = barAt($('widths'), widths, e.offsetX);
    drawWidths($('widths'), widths, i);
    const g = i >= 0 ? groups.find((x) => x.name === widths[i][0]) : null;
    $('widths-group').textContent = g ? coupling(g, widths[i][2]) : 'Point at a bar: the layers cut with that group.';
  });
  $('widths').addEventListener('mouseleave', () => drawWidths($('widths'), widths));

  const read = async (list) => {
    // Data and a model may come in one drop: the data first, then the model
    // (tested on that data): safetensors, .plm, or PyTorch's own checkpoint.
    const model = [...list].find((f) => /\.(safetensors|plm|pt|pth|th)$/i.test(f.name));
    const chosen = [...list].filter((f) => f.name.endsWith('.bin'));
    if (chosen.length) await load(chosen.map((f) => f.name), await Promise.all(chosen.map((f) => f.arrayBuffer())));
    if (model) await importModel(model);
  };
  $('cifar-files').addEventListener('change', (e) => read(e.target.files));
  // A trained model (a PyTorch checkpoint as torch.save wrote it, a
  // state_dict saved as .safetensors, or a .plm) replaces the lab's: read
  // here, nothing uploaded.
  async function importModel(file) {
    if (!info) {
      setStatus('error', `Load the CIFAR data first, then ${file.name}: its images are what the model is tested on.`);
      return;
    }
    await guard('loading', async () => {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const { readAs } = await engine.call('importModel', { bytes, name: file.name }, [bytes.buffer]);
      info = await engine.call('info');
      // The Model list follows the imported network where it has it (a
      // reload of the data then starts that architecture afresh).
      if ([...$('cmodel').options].some((o) => o.value === info.model)) {
        state.cmodel = info.model;
        $('cmodel').value = info.model;
        writeState(state);
      }
      dense = null;
      results.pruned = null;
      points.length = 0;
      session.reset();
      showDense();
      show({ imported: file.name });
      $('cifar-status').textContent = `${file.name}: ${readAs ? `read as ${readAs}` : info.model} · ${info.train_examples} training and ${info.test_examples} test images · ${info.device}`;
      await refresh();
    });
  }
  $('cmodel-file').addEventListener('change', (e) => { if (e.target.files[0]) importModel(e.target.files[0]); });
  $('cmodel-file').disabled = false;
  // The input stays disabled in the HTML until this listener exists: files
  // chosen while the engine was still starting would otherwise be ignored.
  $('cifar-files').disabled = false;
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); read(e.dataTransfer.files); });
  // A local server may expose a CIFAR directory under data/ (prunelab serve
  // --data DIR, or what `prunelab data fetch cifar10` fetched). Relative to
  // the page: a static host under a sub-path has none, and says nothing.
  fetch('data/index.json').then((r) => r.json()).then((list) => {
    if (list.includes('test_batch.bin')) $('server-data').hidden = false;
  }).catch(() => {});
  const serverData = async () => {
    const names = ['data_batch_1.bin', 'test_batch.bin'];
    setStatus('loading', 'Reading the server\'s CIFAR-10…');
    const buffers = await Promise.all(names.map((n) => fetch(`data/${n}`).then((r) => r.arrayBuffer())));
    await load(names, buffers);
  };
  $('server-data').addEventListener('click', serverData);

  // A trained ResNet-20 (the public CIFAR-10 checkpoint, 91.73%, BSD-2:
  // pretrained/LICENSE), where the server or site ships it: the visitor
  // prunes a converged network in seconds instead of training one for
  // minutes. The file records the normalisation it was trained with.
  const PRETRAINED = 'pretrained/resnet20-cifar10.plm';
  fetch(PRETRAINED, { method: 'HEAD' }).then((r) => { if (r.ok) $('cpretrained').hidden = false; }).catch(() => {});
  $('cpretrained').addEventListener('click', async () => {
    if (state.cmodel !== 'resnet20') {
      state.cmodel = 'resnet20';
      $('cmodel').value = 'resnet20';
      writeState(state);
      if (files) await load(files.names, files.buffers);
    }
    if (!info && !$('server-data').hidden) await serverData();
    const bytes = await fetch(PRETRAINED).then((r) => r.arrayBuffer());
    await importModel(new File([bytes], 'resnet20-cifar10.plm'));
    if (info) $('cprune').click();
  });

  $('ctrain').addEventListener('click', () => guard('training', () => train(state.cepochs)));
  $('cprune').addEventListener('click', () => guard('pruning', async () => {
    const report = await prune(state.cmethod, state.camount);
    results.pruned = report;
    show({ pruned: report });
    dense = dense || report.dense;
    showReport(report);
    await refresh();
    warnNearlyEmpty();
  }));
  // A global ranking can take nearly every channel of one layer (S3 on the
  // small CNN's conv3): the network then barely passes a signal, so say so.
  const warnNearlyEmpty = () => {
    const emptied = widths.filter(([, d, n]) => n < d && n <= Math.floor(0.1 * d));
    const text = emptied.length
      ? `This cut leaves ${emptied.map(([name, d, n]) => `${name} with ${n} of ${d} channels`).join(', ')}: too few to carry the signal, so accuracy may collapse. A lower amount, or a per-layer ranking, keeps every layer alive.`
      : '';
    show({ warning: text });
    $('cwarning').textContent = text;
    $('cwarning').hidden = !text;
  };
  $('cfinetune').addEventListener('click', () => guard('training', async () => {
    const epochs = atInit(results.pruned?.method) ? state.cepochs : 1;
    await engine.call('finetune', { epochs });
    await train(epochs);
  }));
  // S1: one gated pass from scratch, the gates drawn as they polarize, then
  // the cut (to the Prune amount of MACs); its result joins the comparison.
  $('cs1').addEventListener('click', () => guard('gating', async () => {
    const history = [];
    $('cgates').hidden = false;
    drawGates($('cgates'), history);
    show({ gates: [] });
    await engine.call('startGated', { macs: state.camount, options: {} });
    let cut = null;
    await train(state.cepochs + 1, (report) => {
      if (report.gates.length) {
        history.push(...report.gates);
        show({ gates: history.map((g) => ({ epoch: g.epoch, kept: g.kept, undecided: g.undecided, frozen: g.frozen })) });
        drawGates($('cgates'), history);
      }
      cut = report.cut || cut;
      return !!report.cut;
    }, state.cepochs);
    if (!cut) throw new Error('the gated pass ended without a cut');
    results.pruned = cut;
    show({ pruned: cut, s1: cut });
    showReport(cut);
    points.push({ label: 'S1 (own pass)', macs: cut.pruned.macs, accuracy: cut.pruned.test_accuracy, params: cut.pruned.params, n: info.test_examples });
    drawScatter($('scatter'), points);
    await refresh();
    warnNearlyEmpty();
  }));
  $('compare').addEventListener('click', () => guard('comparing', async () => {
    const chosen = [...$('compare-methods').querySelectorAll('input:checked')].map((b) => b.value);
    // S1's point (its own pass) stays; the ranked methods are redrawn.
    points.splice(0, points.length, ...points.filter((p) => p.label.startsWith('S1')));
    for (const m of chosen) {
      const r = await prune(m, state.camount);
      // The dense point is the trained model; at-initialisation methods are
      // measured on their untrained ticket, and say so.
      const n = info.test_examples;
      if (!atInit(m) && !points.some((p) => p.dense)) points.push({ label: 'dense', macs: r.dense.macs, accuracy: r.dense.test_accuracy, dense: true, n });
      points.push({ label: atInit(m) ? `${m} (θ₀, untrained)` : m, macs: r.pruned.macs, accuracy: r.pruned.test_accuracy, params: r.pruned.params, n });
      results.comparisons.push(r);
      drawScatter($('scatter'), points);
    }
    show({ compared: points.filter((p) => !p.dense).length, points: points.map(({ label, accuracy, macs, n }) => ({ label, accuracy, macs, n })) });
    $('scatter-caption').textContent = `Bars: the 95% interval of each accuracy on ${info.test_examples} test images; points whose bars overlap are not told apart.`;
  }));
  $('latency').addEventListener('click', () => guard('measuring', async () => {
    const l = await engine.call('latency', { batch: 128, repeats: 3 });
    show({ latency: l });
    $('latency-out').textContent = `dense ${l.dense_ms.toFixed(1)} ms, pruned ${l.shown_ms.toFixed(1)} ms per ${l.batch} images · ${(l.dense_ms / l.shown_ms).toFixed(2)}× faster for ${(l.dense_macs / l.shown_macs).toFixed(2)}× fewer MACs`;
    showLayerTimes(l.layers);
  }));
  // Where the time goes: each conv and linear layer timed alone, dense
  // against pruned (0 where a block was removed).
  const showLayerTimes = (layers) => {
    const body = $('latency-layers').querySelector('tbody');
    body.replaceChildren(...layers.map((t) => {
      const row = document.createElement('tr');
      for (const text of [t.name, t.dense_ms.toFixed(2), t.shown_ms.toFixed(2)]) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }));
    $('latency-layers').hidden = false;
  };
  modelDownloads(engine, 'cdownload', 'cifar-model', () => !!info);
  $('cresults').addEventListener('click', (e) => {
    e.preventDefault();
    download('cifar-results.json', JSON.stringify({ settings: state, ...results }, null, 2), 'application/json');
  });

  return { reload: () => (files ? load(files.names, files.buffers) : null) };
}
