// Draws a decision boundary (class probabilities on a grid) and the points.
// Receives plain arrays; knows nothing of the engine.
export const PALETTE = [[25, 113, 194], [232, 89, 12], [47, 158, 68], [174, 62, 201], [240, 140, 0], [12, 166, 120]];

export function drawBoundary(canvas, probs, resolution, classes, extent, points, labels) {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  const image = ctx.createImageData(resolution, resolution);
  for (let cell = 0; cell < resolution * resolution; cell++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (probs[cell * classes + k] > probs[cell * classes + best]) best = k;
    // Confidence above chance sets the colour's strength.
    const confidence = (probs[cell * classes + best] - 1 / classes) / (1 - 1 / classes);
    const [r, g, b] = PALETTE[best % PALETTE.length];
    const a = 0.15 + 0.55 * Math.max(0, Math.min(1, confidence));
    image.data.set([255 - (255 - r) * a, 255 - (255 - g) * a, 255 - (255 - b) * a, 255], cell * 4);
  }
  const off = new OffscreenCanvas(resolution, resolution);
  off.getContext('2d').putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, width, height);
  drawPoints(ctx, width, height, extent, points, labels);
}

export function drawPoints(ctx, width, height, extent, points, labels) {
  for (let i = 0; i < labels.length; i++) {
    const x = (points[2 * i] / extent + 1) / 2 * width;
    const y = (1 - (points[2 * i + 1] / extent + 1) / 2) * height;
    const [r, g, b] = PALETTE[labels[i] % PALETTE.length];
    ctx.beginPath();
    ctx.arc(x, y, 3, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fill();
    ctx.strokeStyle = 'white';
    ctx.lineWidth = 1;
    ctx.stroke();
  }
}
