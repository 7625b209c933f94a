"""The issue-14 reference: a 20-line TFLite loop (Pillow decode, central crop, bilinear resize,
invoke on 2 threads). Usage: python benchmarks/tflite_loop.py MODEL.tflite DIR [THREADS]"""
import os, sys  # noqa: E401
import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter

it = Interpreter(model_path=sys.argv[1], num_threads=int(sys.argv[3]) if len(sys.argv) > 3 else 2)
it.allocate_tensors()
inp, out = it.get_input_details()[0], it.get_output_details()[0]
_, h, w, _ = inp["shape"]
for name in sorted(os.listdir(sys.argv[2])):
    with Image.open(os.path.join(sys.argv[2], name)) as im:
        im = im.convert("RGB")
        cw, ch = im.width * 0.875, im.height * 0.875
        box = ((im.width - cw) / 2, (im.height - ch) / 2, (im.width + cw) / 2, (im.height + ch) / 2)
        x = np.asarray(im.resize((w, h), Image.BILINEAR, box=box))[None]
    it.set_tensor(inp["index"], x if inp["dtype"] == np.uint8 else ((x - 127.5) / 127.5).astype(np.float32))
    it.invoke()
    print(name, int(np.argmax(it.get_tensor(out["index"])[0])))
