// Decision boundaries and single-neuron maps as heatmaps, with the points on
// top. Receives plain arrays; knows nothing of the engine.
export const PALETTE = [[25, 113, 194], [232, 89, 12], [47, 158, 68], [174, 62, 201], [240, 140, 0], [12, 166, 120]];

function paint(canvas, resolution, colour) {
  const image = new ImageData(resolution, resolution);
  for (let cell = 0; cell < resolution * resolution; cell++) image.data.set(colour(cell), cell * 4);
  const off = new OffscreenCanvas(resolution, resolution);
  off.getContext('2d').putImageData(image, 0, 0);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  return ctx;
}

const tint = ([r, g, b], a) => [255 - (255 - r) * a, 255 - (255 - g) * a, 255 - (255 - b) * a, 255];

/** Class probabilities (`classes` per cell) as colour by winning class, strength by confidence. */
export function drawBoundary(canvas, probs, resolution, classes, extent, points, labels) {
  const ctx = paint(canvas, resolution, (cell) => {
    let best = 0;
    for (let k = 1; k < classes; k++) if (probs[cell * classes + k] > probs[cell * classes + best]) best = k;
    const confidence = (probs[cell * classes + best] - 1 / classes) / (1 - 1 / classes);
    return tint(PALETTE[best % PALETTE.length], 0.12 + 0.58 * Math.max(0, Math.min(1, confidence)));
  });
  drawPoints(ctx, canvas.width, canvas.height, extent, points, labels);
}

/** A unit's output scaled to [-1, 1]: blue below zero, orange above, white at zero. */
export const unitColour = (v) => tint(v < 0 ? PALETTE[0] : PALETTE[1], Math.min(1, Math.abs(v)) * 0.75);

/** One unit's output over the plane. */
export function drawUnitMap(canvas, values, resolution, extent, points, labels) {
  const scale = Math.max(1e-6, ...values.map(Math.abs));
  const ctx = paint(canvas, resolution, (cell) => unitColour(values[cell] / scale));
  drawPoints(ctx, canvas.width, canvas.height, extent, points, labels, 2);
}

export function drawPoints(ctx, width, height, extent, points, labels, radius = 3) {
  for (let i = 0; i < labels.length; i++) {
    const x = (points[2 * i] / extent + 1) / 2 * width;
    const y = (1 - (points[2 * i + 1] / extent + 1) / 2) * height;
    const [r, g, b] = PALETTE[labels[i] % PALETTE.length];
    ctx.beginPath();
    ctx.arc(x, y, radius, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fill();
    ctx.strokeStyle = 'white';
    ctx.lineWidth = 1;
    ctx.stroke();
  }
}
