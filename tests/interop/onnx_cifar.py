"""Accuracy of an exported prunelab ONNX file in ONNX Runtime on the CIFAR-10
test set fed raw [0, 1] pixels (bytes / 255), no other preprocessing."""
import sys, numpy as np, onnxruntime as ort
model, data = sys.argv[1], sys.argv[2]
raw = np.fromfile(f"{data}/test_batch.bin", dtype=np.uint8).reshape(-1, 3073)
labels, x = raw[:, 0], raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
meta = s.get_modelmeta().custom_metadata_map
print("prunelab.input:", meta.get("prunelab.input"))
correct = 0
for i in range(0, len(x), 500):
    logits = s.run(None, {"input": x[i:i + 500]})[0]
    correct += int((logits.argmax(1) == labels[i:i + 500]).sum())
print(f"onnxruntime {ort.__version__}: {correct}/{len(x)} = {100 * correct / len(x):.2f}%")
