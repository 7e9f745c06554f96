#!/usr/bin/env python3
"""Writes an out-of-distribution image folder for Fashion-MNIST models: handwritten digits.

MNIST itself is not packaged for Debian; scikit-learn (python3-sklearn) ships the UCI
optical digits (1,797 images of 8x8 pixels, 16 grey levels) inside the package, so no
download is needed. Each digit is scaled to 0..255, enlarged to 20x20 with bilinear
resampling and centred in a 28x28 black frame, as MNIST centres its 20x20 digits, so the
images share Fashion-MNIST's size, polarity (bright object on black) and framing.

    /usr/bin/python3 scripts/experiments/make-digits-ood.py OUT_DIR [COUNT]

OUT_DIR/<digit>/<index>.png, the first COUNT images (default: all 1,797).
Needs python3-sklearn and python3-pil (apt-get install python3-sklearn python3-pil).
"""
import os
import sys

try:
    from PIL import Image
    from sklearn.datasets import load_digits
except ImportError as e:
    sys.exit(f"make-digits-ood: {e}: apt-get install python3-sklearn python3-pil")


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[-3].strip())
    out = sys.argv[1]
    digits = load_digits()
    count = int(sys.argv[2]) if len(sys.argv) == 3 else len(digits.images)
    for i, (image, label) in enumerate(zip(digits.images[:count], digits.target[:count])):
        small = Image.fromarray((image * (255.0 / 16.0)).round().astype("uint8"), mode="L")
        frame = Image.new("L", (28, 28), 0)
        frame.paste(small.resize((20, 20), Image.BILINEAR), (4, 4))
        folder = os.path.join(out, str(label))
        os.makedirs(folder, exist_ok=True)
        frame.save(os.path.join(folder, f"{i:04d}.png"))
    print(f"make-digits-ood: {count} digits in {out}")


if __name__ == "__main__":
    main()
