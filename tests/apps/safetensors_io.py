# safetensors files read and written with the standard library only, for the CLI tests
# (tests/apps/test_predict.sh, test_hessian.sh): a test makes its inputs and checks dmix's
# outputs without depending on dmix's own reader.
import json
import struct

CODES = {"F32": ("f", 4), "F64": ("d", 8), "I64": ("q", 8), "U8": ("B", 1)}

def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        code, size = CODES[h["dtype"]]
        b, e = h["data_offsets"]
        raw = data[8 + n + b:8 + n + e]
        out[name] = (h["dtype"], h["shape"], list(struct.unpack("<%d%s" % (len(raw) // size, code), raw)))
    return out, meta

def write(path, tensors, meta=None):
    header, blobs, offset = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, (dtype, shape, values) in sorted(tensors.items()):
        code, _ = CODES[dtype]
        raw = struct.pack("<%d%s" % (len(values), code), *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
