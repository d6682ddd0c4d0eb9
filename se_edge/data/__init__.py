"""Datasets: sources in standard formats -> preprocessed, seeded, stratified splits.

A dataset SPEC is one of:

- `digits`: scikit-learn's bundled 8x8 handwritten digits (real images, no download);
- a directory in MNIST's IDX format (`*-images-idx3-ubyte[.gz]` with `*-labels-idx1-ubyte[.gz]`;
  a `t10k`/`test` set beside a training set is the test set);
- a CIFAR-10 batches directory: the python version (`data_batch_*` and `test_batch`, pickled dicts
  read with a restricted unpickler) or the binary version (`data_batch_*.bin`, `test_batch.bin`);
  `test_batch` is the test set;
- an ImageFolder directory: one folder of images per class (class names are the sorted folder
  names); with `train/` and `test/` (or `val/`) folders of class folders, `test/` is the test set;
- an `.npz` file with arrays `x` ((N, H, W), (N, H, W, C) or (N, C, H, W); uint8, or float in
  [0, 1]) and `y` (integer labels), and optionally `x_test` and `y_test` as the test set.

Images are scaled to [0, 1], resized to the network's input size and normalised with the training
split's mean and std; that preprocessing is stored with a run so that evaluation on new data
matches it. A source that cannot be read raises SeEdgeError with one line naming the format that
was expected and what was found.

Sizes are checked from headers and file sizes before anything large is allocated: a CIFAR-10 batch
file is at most 60000 records (binary) or 256 MiB (pickled), and a pickled array must carry exactly
the bytes its shape declares; an .npz member's .npy header (shape x itemsize, and its float32 copy)
must fit in the memory available (types.available_memory: MemAvailable, a cgroup limit, RLIMIT_AS);
an image may have at most 8192 x 8192 pixels, read from its header, and an ImageFolder's images are
resized one by one to the run's size as they are read; the preprocessed set (N x in_chans x size x
size float32) must fit in memory before it is resized; labels are below 100000 (MAX_CLASSES); and
class names must each be one line of printable characters (they become the lines of labels.txt).
"""
from se_edge.data.sources import default_in_chans, load_source
from se_edge.data.splits import apply, load_eval_set, load_splits, read_eval_images, resize
from se_edge.data.types import IMAGE_SUFFIXES, SOURCES, ImageSet, Preprocessing, Source, Splits

__all__ = ["IMAGE_SUFFIXES", "SOURCES", "ImageSet", "Preprocessing", "Source", "Splits", "apply", "default_in_chans",
           "load_eval_set", "load_source", "load_splits", "read_eval_images", "resize"]
