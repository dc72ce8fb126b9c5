// CIFAR test images with the model's predictions (green right, red wrong).
export const CIFAR10 = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

export function drawExamples(container, { images, labels, predictions, confidence }, names = CIFAR10) {
  const cells = labels.map((label, i) => {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 32;
    const image = new ImageData(32, 32);
    for (let p = 0; p < 1024; p++) {
      const base = i * 3072;
      image.data.set([images[base + p], images[base + 1024 + p], images[base + 2048 + p], 255], p * 4);
    }
    canvas.getContext('2d').putImageData(image, 0, 0);
    const figure = document.createElement('figure');
    figure.className = predictions[i] === label ? 'example right' : 'example wrong';
    const caption = document.createElement('figcaption');
    caption.textContent = `${names[predictions[i]] ?? predictions[i]} ${(100 * confidence[i]).toFixed(0)}%`;
    caption.title = `true: ${names[label] ?? label}`;
    figure.append(canvas, caption);
    return figure;
  });
  container.replaceChildren(...cells);
}
