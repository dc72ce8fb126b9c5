// The network as a graph: one column of nodes per layer, links as wide as
// |w|; pruned weights and units greyed out, gates coloured by their value.
// Receives the engine's layer views; calls `onUnit(layer, unit)` on a click.
// Pointing at a unit (or selecting it) outlines its coupling group: the same
// unit of every layer in its group (resmlp's stem and conv2s share one
// residual stream) and the weights that go with them, in and out.
const SVG = 'http://www.w3.org/2000/svg';

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

/** Gate value g in [0, 1] → a colour from grey-blue (closed) to orange (open). */
function gateColour(g) {
  const a = [134, 142, 150], b = [232, 89, 12];
  return `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * g)).join(',')})`;
}

export function drawNetwork(container, layers, { inputs = ['x', 'y'], classes = 2, selected = null, onUnit = () => {} } = {}) {
  const width = container.clientWidth || 520;
  const maxUnits = Math.max(inputs.length, ...layers.map((l) => l.outputs));
  const height = Math.max(220, Math.min(520, maxUnits * 16 + 40));
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'network' });
  const columns = layers.length + 1;
  const x = (c) => 30 + (c / columns) * (width - 60);
  const y = (i, n) => height / 2 + (i - (n - 1) / 2) * Math.min(16, (height - 40) / Math.max(1, n));
  const links = el('g', {}, svg);
  const nodes = el('g', {}, svg);

  // Inputs.
  inputs.forEach((name, i) => {
    el('circle', { cx: x(0), cy: y(i, inputs.length), r: 6, class: 'node input' }, nodes);
    el('text', { x: x(0) - 12, y: y(i, inputs.length) + 4, 'text-anchor': 'end', class: 'label' }, nodes).textContent = name;
  });
  let previousAlive = inputs.map(() => true);
  layers.forEach((layer, c) => {
    const max = Math.max(1e-9, ...layer.magnitude);
    const n = layer.outputs;
    for (let i = 0; i < layer.inputs; i++) {
      for (let o = 0; o < n; o++) {
        const m = layer.magnitude[i * n + o] / max;
        if (m < 0.02) continue;
        const alive = previousAlive[i] && layer.unit_alive[o] && (!layer.weight_alive || layer.weight_alive[i * n + o]);
        el('line', {
          x1: x(c), y1: y(i, layer.inputs), x2: x(c + 1), y2: y(o, n),
          'stroke-width': (0.3 + 3.2 * m).toFixed(2),
          class: alive ? 'link' : 'link pruned',
          'data-out-group': layer.group ?? '', 'data-in-group': layer.reads ?? '', 'data-in': i, 'data-out': o,
        }, links);
      }
    }
    const last = c === layers.length - 1;
    for (let o = 0; o < n; o++) {
      const alive = layer.unit_alive[o];
      const gate = layer.gates ? layer.gates[o] : null;
      const node = el('circle', {
        cx: x(c + 1), cy: y(o, n), r: last ? 7 : 5.5,
        class: `node${alive ? '' : ' pruned'}${last ? ' output' : ''}${selected && selected.layer === layer.name && selected.unit === o ? ' selected' : ''}`,
        'data-layer': layer.name, 'data-unit': o, 'data-group': layer.group ?? '',
      }, nodes);
      if (gate !== null) node.style.fill = gateColour(gate);
      const title = el('title', {}, node);
      title.textContent = `${layer.name} #${o}${gate !== null ? ` · gate ${gate.toFixed(2)}` : ''}${alive ? '' : ' · pruned'}`;
      if (!last) {
        node.addEventListener('click', () => onUnit(layer.name, o));
        node.addEventListener('mouseenter', () => highlight(svg, layer.group, o));
        node.addEventListener('mouseleave', () => highlight(svg, selectedGroup(layers, selected), selected?.unit));
      }
    }
    const short = layer.name.replace(/^stage(\d+)\.block(\d+)\.conv(\d)$/, (_, s, b, k) => `b${b}.${k}`);
    const label = el('text', { x: x(c + 1), y: height - 6, 'text-anchor': 'middle', class: 'label' }, nodes);
    label.textContent = last ? `out (${classes})` : `${short} ${layer.unit_alive.filter(Boolean).length}/${n}`;
    el('title', {}, label).textContent = layer.name;
    previousAlive = layer.unit_alive;
  });
  highlight(svg, selectedGroup(layers, selected), selected?.unit);
  container.replaceChildren(svg);
}

function selectedGroup(layers, selected) {
  return selected ? layers.find((l) => l.name === selected.layer)?.group : null;
}

/** Outlines unit `unit` of group `group` everywhere: its nodes, the weights
 * that produce it and the weights that read it (nothing when `group` is unset). */
export function highlight(svg, group, unit) {
  for (const e of svg.querySelectorAll('.coupled')) e.classList.remove('coupled');
  if (!group) return;
  const u = String(unit);
  for (const node of svg.querySelectorAll('circle[data-group]')) {
    if (node.dataset.group === group && node.dataset.unit === u) node.classList.add('coupled');
  }
  for (const line of svg.querySelectorAll('line[data-in]')) {
    const out = line.dataset.outGroup === group && line.dataset.out === u;
    const into = line.dataset.inGroup === group && line.dataset.in === u;
    if (out || into) line.classList.add('coupled');
  }
}
