// Small canvas charts: curves over training, and a scatter of accuracy
// against MACs. Receive plain arrays.
const INK = '#667085';

function frame(canvas) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  return ctx;
}

/** `values` averaged into at most `n` buckets: a chart never draws more
 * points than it has pixels, however long training runs. */
function buckets(values, n) {
  if (values.length <= n) return values;
  const out = [];
  for (let b = 0; b < n; b++) {
    const lo = Math.floor((b * values.length) / n), hi = Math.floor(((b + 1) * values.length) / n);
    let sum = 0;
    for (let i = lo; i < hi; i++) sum += values[i];
    out.push(sum / Math.max(1, hi - lo));
  }
  return out;
}

/** Training loss per step (line) and test accuracy per epoch (dots, right axis 0–1). */
export function drawCurves(canvas, allLosses, allAccuracies) {
  const ctx = frame(canvas);
  const { width, height } = canvas;
  const pad = { l: 30, r: 30, t: 8, b: 20 };
  ctx.strokeStyle = '#e4e7ec';
  ctx.strokeRect(pad.l, pad.t, width - pad.l - pad.r, height - pad.t - pad.b);
  ctx.fillStyle = INK;
  ctx.font = '11px system-ui';
  const plot = width - pad.l - pad.r;
  const losses = buckets(allLosses, plot);
  const accuracies = buckets(allAccuracies, Math.floor(plot / 4));
  if (losses.length < 2) {
    ctx.fillText('loss and accuracy appear here while training', pad.l + 8, height / 2);
    return;
  }
  const max = losses.reduce((m, v) => Math.max(m, v), 0);
  const px = (i, n) => pad.l + (i / Math.max(1, n - 1)) * (width - pad.l - pad.r);
  const py = (v) => pad.t + (1 - v) * (height - pad.t - pad.b);
  ctx.beginPath();
  losses.forEach((l, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, px(i, losses.length), py(l / max)));
  ctx.strokeStyle = '#e8590c';
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.fillStyle = '#1971c2';
  accuracies.forEach((a, i) => {
    ctx.beginPath();
    ctx.arc(px(i + 1, accuracies.length + 1), py(a), 3, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.fillStyle = INK;
  ctx.fillText(`loss ≤ ${max.toFixed(2)}`, pad.l + 4, height - 6);
  ctx.textAlign = 'right';
  ctx.fillText(`acc ${allAccuracies.length ? (100 * allAccuracies.at(-1)).toFixed(1) + '%' : '–'}`, width - 4, pad.t + 10);
  ctx.textAlign = 'left';
}

/** Points `{label, macs, accuracy, dense}`: accuracy against MACs (fraction of the largest). */
export function drawScatter(canvas, points) {
  const ctx = frame(canvas);
  const { width, height } = canvas;
  const pad = { l: 44, r: 12, t: 10, b: 30 };
  ctx.strokeStyle = '#e4e7ec';
  ctx.strokeRect(pad.l, pad.t, width - pad.l - pad.r, height - pad.t - pad.b);
  ctx.fillStyle = INK;
  ctx.font = '11px system-ui';
  ctx.fillText('MACs →', width - 56, height - 8);
  ctx.save();
  ctx.translate(12, height / 2 + 24);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText('accuracy →', 0, 0);
  ctx.restore();
  if (!points.length) return;
  const maxMacs = Math.max(...points.map((p) => p.macs));
  const accs = points.map((p) => p.accuracy);
  const spread = Math.max(0, ...points.map((p) => (p.n ? 1.96 * Math.sqrt(0.25 / p.n) : 0)));
  const lo = Math.max(0, Math.min(...accs) - 0.05 - spread), hi = Math.min(1, Math.max(...accs) + 0.03 + spread);
  const px = (m) => pad.l + (m / (maxMacs * 1.25)) * (width - pad.l - pad.r);
  const py = (a) => pad.t + (1 - (a - lo) / Math.max(1e-6, hi - lo)) * (height - pad.t - pad.b);
  ctx.fillText(`${(100 * hi).toFixed(0)}%`, 4, pad.t + 8);
  ctx.fillText(`${(100 * lo).toFixed(0)}%`, 4, height - pad.b);
  const colours = ['#1971c2', '#e8590c', '#2f9e44', '#ae3ec9', '#f08c00', '#0ca678', '#c2255c'];
  points.forEach((p, i) => {
    ctx.fillStyle = p.dense ? '#1d2330' : colours[i % colours.length];
    // The test set's own spread: a 95% (normal-approximation) interval of
    // an accuracy measured on `n` images.
    if (p.n) {
      const half = 1.96 * Math.sqrt((p.accuracy * (1 - p.accuracy)) / p.n);
      ctx.fillRect(px(p.macs) - 1, py(Math.min(1, p.accuracy + half)), 2, py(Math.max(0, p.accuracy - half)) - py(Math.min(1, p.accuracy + half)));
    }
    ctx.beginPath();
    ctx.arc(px(p.macs), py(p.accuracy), p.dense ? 6 : 5, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillText(p.label, px(p.macs) + 8, py(p.accuracy) + 4);
  });
}
