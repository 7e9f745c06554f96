#!/usr/bin/env python3
# Writes the seed corpora of the libFuzzer harnesses into tests/fuzz/corpus/<harness>/:
# a few tiny valid files of each format and a few invalid ones near the checks that matter
# (python3 tests/fuzz/make_corpus.py; the files are committed, so this runs only when the
# seeds change). Standard library only; the two JPEG seeds are fixed bytes that
# stb_image_write made (quality 50), as the standard library has no JPEG encoder.
import gzip
import json
import os
import shutil
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

JPEG_RGB_8X8 = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb008400100b0c0e0c0a100e0d0e1211101318281a181616183123251d"
    "283a333d3c3933383740485c4e404457453738506d51575f626768673e4d71797064785c656763011112121815182f1a1a2f"
    "6342384263636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363"
    "63636363ffc00011080008000803012200021101031101ffc401a20000010501010101010100000000000000000102030405"
    "060708090a0b100002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1"
    "c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a63646566"
    "6768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4"
    "c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa010003010101010101010101000000"
    "0000000102030405060708090a0b110002010204040304070504040001027700010203110405213106124151076171132232"
    "8108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a35363738393a434445464748494a535455"
    "565758595a636465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3"
    "b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9faffda000c030100"
    "02110311003f00491551121458d49c6ecb0c1e83af4c738f4c11d8fcedfb00ff009e365ff7f22ff0a8ae3efa7fbbfd21a2ae"
    "11938ab3b6825539637b2776f73fffd9"
)
JPEG_GREY_5X3 = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb008400100b0c0e0c0a100e0d0e1211101318281a181616183123251d"
    "283a333d3c3933383740485c4e404457453738506d51575f626768673e4d71797064785c656763011112121815182f1a1a2f"
    "6342384263636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363"
    "63636363ffc00011080003000503012200021101031101ffc401a20000010501010101010100000000000000000102030405"
    "060708090a0b100002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1"
    "c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a63646566"
    "6768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4"
    "c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa010003010101010101010101000000"
    "0000000102030405060708090a0b110002010204040304070504040001027700010203110405213106124151076171132232"
    "8108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a35363738393a434445464748494a535455"
    "565758595a636465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3"
    "b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9faffda000c030100"
    "02110311003f00ccf113369d69632d91f21a7dfe608f853b42e303a0ea7a5617f6bea1ff003f727e75b9e30ff907695ff6d7"
    "ff0064ae5a803fffd9"
)


def safetensors(entries, meta=None, raw_header=None, data=b"", length=None):
    """entries: name -> (dtype, shape, begin, end); the header is padded to 8 bytes as dmix writes it."""
    header = {}
    if meta is not None:
        header["__metadata__"] = meta
    for name, (dtype, shape, begin, end) in entries.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def floats(*values):
    return struct.pack("<%df" % len(values), *values)


def safetensors_seeds():
    ok = {"a": ("F32", [2, 2], 0, 16), "b": ("U8", [3], 16, 19)}
    data = floats(1, 2, 3, 4) + b"\x01\x02\x03"
    return {
        "valid": safetensors(ok, {"note": "seed"}, data=data),
        "valid_no_meta": safetensors({"x": ("F64", [1], 0, 8)}, data=struct.pack("<d", 0.5)),
        "empty_header": safetensors({}),
        "scalar_and_empty": safetensors({"s": ("I64", [], 0, 8), "e": ("F16", [0, 7], 8, 8)}, data=bytes(8)),
        "bf16": safetensors({"h": ("BF16", [2], 0, 4)}, data=bytes(4)),
        "overlap": safetensors({"a": ("F32", [2], 0, 8), "b": ("F32", [2], 4, 12)}, data=bytes(12)),
        "hole": safetensors({"a": ("F32", [1], 0, 4), "b": ("F32", [1], 8, 12)}, data=bytes(12)),
        "past_end": safetensors({"a": ("F32", [4], 0, 16)}, data=bytes(8)),
        "shape_overflow": safetensors({"a": ("F32", [1 << 40, 1 << 40], 0, 0)}),
        "zero_times_huge": safetensors({"a": ("U8", [0, 1 << 62, 1 << 62], 0, 0)}),
        "unknown_dtype": safetensors({"a": ("Q8", [1], 0, 1)}, data=b"\x00"),
        "negative_offset": safetensors({}, raw_header=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}'),
        "duplicate_key": safetensors({}, raw_header=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                                    b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
                                     data=b"\x00"),
        "huge_length": safetensors({}, length=1 << 60),
        "bad_json": safetensors({}, raw_header=b'{"a": [1, 2'),
        "meta_not_string": safetensors({}, raw_header=b'{"__metadata__": {"k": 3}}'),
        "truncated": safetensors(ok, data=data)[:-5],
    }


def checkpoint_seeds():
    # The stem and classifier of pyramidnet8_a0_basic with 2 classes and 1 input channel;
    # the other tensors are missing, so a load ends at the state dict's check, after the
    # metadata and the model build.
    conv1, fc = 16 * 1 * 3 * 3 * 4, 2 * 16 * 4
    tensors = {"model.conv1.weight": ("F32", [16, 1, 3, 3], 0, conv1),
               "model.fc.weight": ("F32", [2, 16], conv1, conv1 + fc)}
    data = bytes(conv1 + fc)
    meta = {"format": "dmix-checkpoint", "format_version": "1.0", "model": "pyramidnet8_a0_basic",
            "num_classes": "2", "in_channels": "1", "epoch": "1"}
    plain = {k[len("model."):]: v for k, v in tensors.items()}
    return {
        "dmix_checkpoint": safetensors(tensors, meta, data=data),
        "plain_state_dict": safetensors(plain, data=data),
        "optimizer_state": safetensors({"model.fc.weight": ("F32", [2, 16], 0, fc),
                                        "optim.fc.weight.momentum": ("F32", [2, 16], fc, 2 * fc)},
                                       meta, data=bytes(2 * fc)),
        "version_2": safetensors({}, dict(meta, format_version="2.0")),
        "version_long": safetensors({}, dict(meta, format_version="9" * 40)),
        "no_version": safetensors({}, {"format": "dmix-checkpoint"}),
        "classes_not_number": safetensors(tensors, dict(meta, num_classes="ten"), data=data),
        # Regressions: load_model built the model from these numbers before seeing that the
        # weights disagree (a 64 TB classifier; 2^40 classes read off a tensor of no bytes).
        "classes_mismatch": safetensors(tensors, dict(meta, num_classes="1000000000000"), data=data),
        "channels_mismatch": safetensors(tensors, dict(meta, in_channels="1000000000000"), data=data),
        "unknown_model": safetensors(tensors, dict(meta, model="pyramidnet7_a1"), data=data),
        "stray_tensor": safetensors({"other": ("U8", [1], 0, 1)}, meta, data=b"\x00"),
        "empty_classifier": safetensors({"fc.weight": ("F32", [1 << 40, 0], 0, 0)}),
    }


def idx(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


def two_parts(first, second):
    return struct.pack("<I", len(first)) + first + second


def idx_seeds():
    images = idx(0x803, [3, 2, 2], bytes(range(12)))
    labels = idx(0x801, [3], bytes([0, 9, 4]))
    return {
        "raw": two_parts(images, labels),
        "gzip": two_parts(gzip.compress(images, mtime=0), gzip.compress(labels, mtime=0)),
        "gzip_images_raw_labels": two_parts(gzip.compress(images, mtime=0), labels),
        "bad_magic": two_parts(idx(0x802, [3, 2, 2], bytes(12)), labels),
        "label_out_of_range": two_parts(images, idx(0x801, [3], bytes([0, 10, 1]))),
        "count_mismatch": two_parts(images, idx(0x801, [2], bytes(2))),
        "truncated": two_parts(images[:-3], labels),
        "trailing_bytes": two_parts(images + b"\x00", labels),
        "huge_dims": two_parts(idx(0x803, [0xFFFFFFFF, 65536, 65536], b""), labels),
        "gzip_corrupt_trailer": two_parts(gzip.compress(images, mtime=0)[:-4] + b"\x00\x00\x00\x00", labels),
    }


def cifar_seeds():
    # One record each (3073 or 3074 bytes, the smallest a batch can be).
    rec10 = bytes([3]) + bytes((3 * 7 + i) % 256 for i in range(3072))
    names10 = b"\n".join(b"class%d" % i for i in range(10)) + b"\n\n"
    rec100 = bytes([19, 99]) + bytes(3072)
    names100 = b"\n".join(b"fine%d" % i for i in range(100)) + b"\n"
    return {
        "cifar10_names": b"\x02" + two_parts(names10, rec10),
        "cifar100": b"\x01" + rec100,
        "cifar100_names": b"\x03" + two_parts(names100, rec100),
        "cifar10_bad_label": b"\x00" + bytes([10]) + bytes(3072),
        "cifar10_short_record": b"\x00" + rec10[:-1],
        "cifar10_few_names": b"\x02" + two_parts(b"a\nb\n", rec10),
    }


def png(width, height, colour_type, rows, declared=None):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    w, h = declared or (width, height)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def bmp(width, height):
    row = bytes((x * 40) % 256 for x in range(width * 3))
    row += bytes((4 - len(row) % 4) % 4)
    pixels = row * height
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def tga(width, height):
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, width, height, 24, 0)
    return header + bytes((i * 11) % 256 for i in range(width * height * 3))


# A 1x1 GIF: header, logical screen with a 2-colour table, image descriptor, LZW data.
GIF_1X1 = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
           b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def image_seeds():
    rgb_rows = [bytes((x * 50 + y * 20) % 256 for x in range(9)) for y in range(2)]
    return {
        # decode_image decodes odd-sized inputs as grey and even-sized ones as RGB.
        "rgb.png": png(3, 2, 2, rgb_rows),
        "grey.png": png(4, 3, 0, [bytes([y * 60 + x]) * 1 + bytes(3) for x, y in ((0, 0), (1, 1), (2, 2))]),
        "rgba.png": png(2, 2, 6, [bytes(8), bytes(range(8))]),
        "rgb.jpg": JPEG_RGB_8X8,
        "grey.jpg": JPEG_GREY_5X3,
        "rgb.bmp": bmp(3, 2),
        "grey.pgm": b"P5\n3 2\n255\n" + bytes([0, 50, 100, 150, 200, 250]),
        "rgb.ppm": b"P6\n2 2\n255\n" + bytes(range(0, 240, 20)),
        "rgb.tga": tga(2, 3),
        "one.gif": GIF_1X1,
        "huge.pgm": b"P5\n30000 30000\n255\n" + bytes(16),
        "huge.png": png(1, 1, 2, [bytes(3)], declared=(1 << 24, 1 << 24)),
        "text.jpg": b"this is a text file, not a JPEG",
    }


def class_index_seeds():
    return {
        "names.txt": b"n01440764 tench\nn01443537 goldfish, Carassius auratus\n# a comment\n\nn01484850\n",
        "indexed.txt": b"1 n01443537 goldfish\n0 n01440764 tench\n2 n01484850 great white shark\n",
        "index.json": json.dumps({"0": ["n01440764", "tench"], "1": ["n01443537", "goldfish"]}).encode(),
        "names.json": json.dumps({"1": "b", "0": "a"}).encode(),
        "repeated_name.txt": b"a\nb\na\n",
        "index_gap.txt": b"0 a\n2 b\n",
        "index_repeat.json": b'{"0": "a", "00": "b"}',
        "bad_value.json": b'{"0": ["a", 3]}',
        "huge_index.txt": b"999999999999999999 a\n",
    }


def subset_seeds():
    header = b"# dmix subset: measure cv, rule top, ratio 0.01, seed 0, checkpoint c.safetensors, dataset d (1000 images), 3 indices\n"
    return {
        "with_header": header + b"5\n999\n0\n",
        "plain": b"1\n2\n\n# comment\n3\n",
        "count_mismatch": header + b"5\n",
        "other_dataset": header.replace(b"1000 images", b"60000 images") + b"1\n2\n3\n",
        "repeat": b"4\n4\n",
        "out_of_range": b"1000\n",
        "not_a_number": b"12a\n",
        "too_long": b"99999999999999999999999\n",
    }


def main():
    seeds = {"fuzz_safetensors": safetensors_seeds(), "fuzz_checkpoint": checkpoint_seeds(), "fuzz_idx": idx_seeds(),
             "fuzz_cifar": cifar_seeds(), "fuzz_image": image_seeds(), "fuzz_class_index": class_index_seeds(),
             "fuzz_subset": subset_seeds()}
    for harness, files in seeds.items():
        folder = os.path.join(CORPUS, harness)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for name, data in files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
    total = sum(len(d) for files in seeds.values() for d in files.values())
    print("make_corpus: %d files, %d bytes in %s" % (sum(len(f) for f in seeds.values()), total, CORPUS),
          file=sys.stderr)


if __name__ == "__main__":
    main()
