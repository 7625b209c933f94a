"""The TFLite loop's twin on ONNX Runtime (float models: the graph is written from the tinymobile
model by tinymobile.peers). Usage: python benchmarks/ort_loop.py MODEL.npz DIR [THREADS]"""
import os, sys  # noqa: E401
import numpy as np
import onnxruntime as ort
from PIL import Image
import tinymobile
from tinymobile.peers import onnx_model_bytes

net = tinymobile.load(sys.argv[1], threads=1).network
opts = ort.SessionOptions()
opts.intra_op_num_threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
sess = ort.InferenceSession(onnx_model_bytes(net), opts, providers=["CPUExecutionProvider"])
h, w = net.input_size
for name in sorted(os.listdir(sys.argv[2])):
    with Image.open(os.path.join(sys.argv[2], name)) as im:
        im = im.convert("RGB")
        cw, ch = im.width * 0.875, im.height * 0.875
        box = ((im.width - cw) / 2, (im.height - ch) / 2, (im.width + cw) / 2, (im.height + ch) / 2)
        x = np.asarray(im.resize((w, h), Image.BILINEAR, box=box))[None]
    x = ((x - 127.5) / 127.5).astype(np.float32).transpose(0, 3, 1, 2)
    print(name, int(np.argmax(sess.run(None, {"x": np.ascontiguousarray(x)})[0][0])))
