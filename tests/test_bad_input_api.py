"""The Python API refuses bad arguments as the CLI does: at the function's entry, before any quantisation or export
work, with one line (a SeEdgeError, so a ValueError) naming the function, the argument, what it got and what is
valid."""
import re
import types

import numpy as np
import pytest
import torch
import torch.nn as nn

import se_edge.api as api
from se_edge.config import QatConfig
from se_edge.errors import SeEdgeError


@pytest.fixture(scope="module")
def model() -> nn.Module:
    """Greyscale in (the first convolution takes 1 channel), 3 classes out."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)


LABELS = np.array([0, 1, 2, 0])


def refused(call, pattern: str) -> str:
    """`call()` raises a one-line SeEdgeError (a ValueError) matching `pattern`; its message."""
    with pytest.raises(SeEdgeError, match=pattern) as info:
        call()
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message, message
    return message


def int8_model(shape=(1, 1, 8, 8)) -> api.Int8Model:
    """An Int8Model over a stand-in graph: its methods' checks run before the graph is touched."""
    return api.Int8Model(nn.Identity(), torch.zeros(shape), "ptq")


# to_int8: the model

@pytest.mark.parametrize("not_a_model, got", [
    (np.zeros((4, 1, 8, 8), np.float32), r"got a float32 array of shape \(4, 1, 8, 8\) \(the arguments are "
                                         r"to_int8\(model, images, labels, qat=\.\.\.\)\)"),
    (None, "got None"),
    ("se_cnn", "got str 'se_cnn'"),
])
def test_to_int8_refuses_a_model_that_is_not_a_module(images, not_a_model, got):
    refused(lambda: api.to_int8(not_a_model, images), rf"^to_int8: model must be a torch\.nn\.Module; {got}$")


def test_an_int8_model_is_named_as_already_quantised(images):
    refused(lambda: api.export_float(int8_model(), images[:1], "m.tflite"),
            r"^export_float: model must be a torch\.nn\.Module; got se_edge\.api\.Int8Model \(an Int8Model is "
            r"quantised already: export it with \.export_tflite\(path\) or \.export_pte\(path\)\)$")


# to_int8: the images

EXPECTED = r"^to_int8: images must be \(N, C, H, W\) floats, an array or tensor; "


def test_a_ragged_list_of_images_names_the_two_shapes(model):
    refused(lambda: api.to_int8(model, [np.zeros((1, 8, 8)), np.zeros((1, 9, 9))]),
            EXPECTED + r"got a list of 2 arrays of different shapes \(1, 8, 8\) and \(1, 9, 9\)$")
    refused(lambda: api.to_int8(model, [torch.zeros(1, 8, 8), torch.zeros(1, 8, 8), torch.zeros(2, 8, 8)]),
            EXPECTED + r"got a list of 3 arrays of different shapes \(1, 8, 8\) and \(2, 8, 8\)$")
    refused(lambda: api.to_int8(model, [[[[0.0]]], [[[0.0, 1.0]]]]),
            EXPECTED + r"got a list of 2 items of different shapes \(1, 1, 1\) and \(1, 1, 2\)$")
    refused(lambda: api.to_int8(model, [[[[0.0]]], [[[0.0], [1.0, 2.0]]]]),
            EXPECTED + r"got a list whose item 1 is itself ragged \(its parts differ in shape\)$")


def test_a_channel_mismatch_names_the_first_convolution_before_tracing(model, monkeypatch):
    import se_edge.quantize as quantize

    def no_trace(*args, **kwargs):
        raise AssertionError("traced a model its images do not fit")

    monkeypatch.setattr(quantize, "prepare_ptq", no_trace)
    refused(lambda: api.to_int8(model, np.zeros((4, 3, 8, 8), np.float32)),
            r"^to_int8: images have 3 channels \(a float32 array of shape \(4, 3, 8, 8\)\) but the model's first "
            r"convolution takes 1: give \(N, 1, H, W\)$")
    refused(lambda: api.to_int8(model, torch.zeros(4, 8, 8, 1)),
            r"^to_int8: images have 8 channels \(a float32 tensor of shape \(4, 8, 8, 1\)\) but the model's first "
            r"convolution takes 1: give \(N, 1, H, W\) \(channels last\? PyTorch takes \(N, C, H, W\): "
            r"x\.permute\(0, 3, 1, 2\)\)$")


@pytest.mark.parametrize("bad, got", [
    (None, "got None"),
    ("images.npy", "got str 'images.npy'"),
    ([], "got an empty list"),
    (np.zeros((4, 8, 8), np.float32),
     r"got a float32 array of shape \(4, 8, 8\) \(add the channel axis: x\[:, None\] for one channel\)"),
    (np.zeros((8, 8), np.float32), r"got a float32 array of shape \(8, 8\)"),
    (np.zeros((4, 1, 8, 8), np.uint8),
     r"got a uint8 array of shape \(4, 1, 8, 8\) \(pixels\? normalise them to floats as the model was trained\)"),
    (torch.zeros(4, 1, 8, 8, dtype=torch.bool), r"got a bool tensor of shape \(4, 1, 8, 8\)"),
    ([np.zeros((1, 8, 8), np.int64)] * 2, r"got a list of 2 arrays, as one int64 array of shape \(2, 1, 8, 8\) "
                                          r"\(pixels\? normalise them to floats as the model was trained\)"),
    (np.zeros((0, 1, 8, 8), np.float32), r"got a float32 array of shape \(0, 1, 8, 8\)"),
])
def test_images_of_the_wrong_type_rank_or_dtype(model, bad, got):
    with_one = r", with at least one image" if isinstance(bad, np.ndarray) and bad.ndim == 4 and not len(bad) else ""
    refused(lambda: api.to_int8(model, bad),
            rf"^to_int8: images must be \(N, C, H, W\) floats, an array or tensor{with_one}; {got}$")


def test_images_must_be_finite(model, images):
    bad = images.copy()
    bad[2, 0, 3, 3], bad[3, 0, 0, 0] = np.nan, np.inf
    refused(lambda: api.to_int8(model, bad),
            r"^to_int8: images must be finite; 2 values of a float32 array of shape \(4, 1, 8, 8\) are NaN or "
            r"infinite \(in float32\), the first in image 2$")
    refused(lambda: api.to_int8(model, images.astype(np.float64) * 1e300),  # finite in float64, not in float32
            r"^to_int8: images must be finite; \d+ values of a float64 array")


def test_a_model_that_fails_on_the_images_fails_before_tracing(images):
    too_small = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 9))  # 8x8 -> 6x6, then a 9x9 kernel
    message = refused(lambda: api.to_int8(too_small, images),
                      r"^to_int8: the model fails on one image of shape \(1, 1, 8, 8\): RuntimeError: ")
    assert "Kernel size" in message


# to_int8: labels and the other arguments

QAT = QatConfig(epochs=1)
LABELS_EXPECTED = r"^to_int8: labels must be 1-D integer class indices, one per image \(4\); "


@pytest.mark.parametrize("bad, got", [
    (LABELS.astype(np.float32), r"got a float32 array of shape \(4,\)"),
    (np.eye(3, dtype=np.int64)[LABELS], r"got an int64 array of shape \(4, 3\) \(one-hot\? give the indices: "
                                        r"labels\.argmax\(1\)\)"),
    (LABELS[:3], "got 3 labels for 4 images"),
    (torch.tensor([0, 1, 2, 0, 1]), "got 5 labels for 4 images"),
    ("0120", "got str '0120'"),
    ([[0, 1], [2]], r"got a list of 2 items of different shapes \(2,\) and \(1,\)"),
])
def test_labels_of_the_wrong_type_shape_or_count(model, images, bad, got):
    refused(lambda: api.to_int8(model, images, bad, qat=QAT), LABELS_EXPECTED + got + "$")


def test_labels_must_be_class_indices_of_the_model(model, images):
    refused(lambda: api.to_int8(model, images, [0, 1, -1, 2], qat=QAT),
            r"^to_int8: labels must be class indices >= 0; got -1 \(labels\[2\]\)$")
    refused(lambda: api.to_int8(model, images, [0, 1, 3, 2], qat=QAT),
            r"^to_int8: labels must be class indices below the model's 3 outputs; got 3 \(labels\[2\]\)$")


def test_the_other_arguments_of_to_int8(model, images):
    refused(lambda: api.to_int8(model, images, qat=QAT),
            r"^to_int8: QAT needs labels for its images: to_int8\(model, images, labels, qat=\.\.\.\)$")
    refused(lambda: api.to_int8(model, images, LABELS, qat={"epochs": 1}),
            r"^to_int8: qat must be a se_edge\.QatConfig or None; got dict$")
    refused(lambda: api.to_int8(model, images, LABELS, qat=QAT, val_images=images),
            r"^to_int8: val_images and val_labels go together; got val_images without val_labels$")
    refused(lambda: api.to_int8(model, images, LABELS, qat=QAT, val_images=np.zeros((2, 1, 9, 9), np.float32),
                                val_labels=[0, 1]),
            r"^to_int8: val_images must be \(N, 1, 8, 8\), the \(C, H, W\) of images; got a float32 array of shape "
            r"\(2, 1, 9, 9\)$")
    refused(lambda: api.to_int8(model, images, LABELS, qat=QAT, val_images=images, val_labels=[0, 1]),
            r"^to_int8: val_labels must be 1-D integer class indices, one per image \(4\); got 2 val_labels for 4 "
            r"images$")
    refused(lambda: api.to_int8(model, images, calibration_images=0),
            r"^to_int8: calibration_images must be an int >= 1 or None; got int 0$")
    refused(lambda: api.to_int8(model, images, calibration_images=True),
            r"^to_int8: calibration_images must be an int >= 1 or None; got bool True$")
    refused(lambda: api.to_int8(model, images, delegable_activations="yes"),
            r"^to_int8: delegable_activations must be True or False; got str 'yes'$")


# export_float, Int8Model and to_hardware_aware

def test_export_float_checks_its_sample_and_path_before_exporting(model, images, tmp_path, monkeypatch):
    import se_edge.export as export

    def no_export(*args, **kwargs):
        raise AssertionError("exported with a bad argument")

    monkeypatch.setattr(export, "export_tflite", no_export)
    monkeypatch.setattr(export, "export_pte", no_export)
    refused(lambda: api.export_float(model, images[0], tmp_path / "m.tflite"),
            r"^export_float: sample must be \(N, C, H, W\) floats, an array or tensor; got a float32 array of shape "
            r"\(1, 8, 8\) \(add the channel axis")
    refused(lambda: api.export_float(model, torch.zeros(1, 3, 8, 8), tmp_path / "m.tflite"),
            r"^export_float: sample has 3 channels \(a float32 tensor of shape \(1, 3, 8, 8\)\) but the model's "
            r"first convolution takes 1: give \(N, 1, H, W\)$")
    refused(lambda: api.export_float(model, images[:1], 5),
            r"^export_float: path must be a str or os\.PathLike ending in \.tflite, \.pte; got int 5$")
    refused(lambda: api.export_float(model, images[:1], tmp_path / "m.onnx"),
            r"^export_float: cannot export to \S+m\.onnx: unknown suffix '\.onnx'; valid: \.tflite, \.pte$")
    (tmp_path / "file").write_text("")
    refused(lambda: api.export_float(model, images[:1], tmp_path / "file" / "m.pte"),
            r"^export_float: cannot use \S+file as an output directory: it exists and is not a directory$")


def test_int8_model_methods_check_their_arguments(images):
    int8 = int8_model()
    refused(lambda: int8.export_tflite("m.pte"), r"^Int8Model\.export_tflite: path must end in \.tflite; got 'm\.pte'$")
    refused(lambda: int8.export_pte(None), r"^Int8Model\.export_pte: path must be a str or os\.PathLike ending in "
                                           r"\.pte; got None$")
    refused(lambda: int8.export("m"), r"^Int8Model\.export: cannot export to m: unknown suffix '\(none\)'; valid: "
                                      r"\.tflite, \.pte$")
    refused(lambda: int8(torch.zeros(2, 1, 9, 9)),
            r"^Int8Model\.__call__: x must be \(N, 1, 8, 8\), the \(C, H, W\) the Int8Model was quantised for; got a "
            r"float32 tensor of shape \(2, 1, 9, 9\)$")
    refused(lambda: int8([images[0], images[1][:, :4]]),
            r"^Int8Model\.__call__: x must be \(N, C, H, W\) floats, an array or tensor; got a list of 2 arrays of "
            r"different shapes \(1, 8, 8\) and \(1, 4, 8\)$")
    refused(lambda: api.Int8Model(images, torch.zeros(1, 1, 8, 8), "ptq"),
            r"^Int8Model: prepared must be a torch\.nn\.Module; got a float32 array of shape \(4, 1, 8, 8\)")
    refused(lambda: api.Int8Model(nn.Identity(), images[:1], "ptq"),
            r"^Int8Model: sample must be a \(1, C, H, W\) tensor; got a float32 array of shape \(1, 1, 8, 8\)$")
    refused(lambda: api.Int8Model(nn.Identity(), torch.zeros(1, 1, 8, 8), "int8"),
            r"^Int8Model: kind must be 'ptq' or 'qat'; got str 'int8'$")


def test_to_hardware_aware_checks_its_model_and_example(model):
    refused(lambda: api.to_hardware_aware(np.zeros((2, 1, 8, 8), np.float32)),
            r"^to_hardware_aware: model must be a torch\.nn\.Module; got a float32 array of shape \(2, 1, 8, 8\) "
            r"\(the arguments are to_hardware_aware\(model, example\)\)$")
    refused(lambda: api.to_hardware_aware(model, torch.zeros(2, 3, 8, 8)),
            r"^to_hardware_aware: example has 3 channels \(a float32 tensor of shape \(2, 3, 8, 8\)\) but the "
            r"model's first convolution takes 1: give \(N, 1, H, W\)$")
    refused(lambda: api.to_hardware_aware(model, torch.zeros(2, 1, 8, 8), silu="no"),
            r"^to_hardware_aware: silu must be True or False; got str 'no'$")


# check_parity

def test_check_parity_checks_files_reference_and_images_before_opening_any(model, images, tmp_path, monkeypatch):
    import se_edge.runner as runner

    def no_open(*args, **kwargs):
        raise AssertionError("opened a file with a bad argument")

    monkeypatch.setattr(runner, "open_model", no_open)
    tflite = tmp_path / "m.tflite"
    tflite.write_bytes(b"")
    refused(lambda: api.check_parity([str(tflite)], images),
            r"^check_parity: files must be a non-empty dict of name -> \.tflite or \.pte path, e\.g\. "
            r"\{'tflite': 'm\.tflite'\}; got a list of 1 item$")
    refused(lambda: api.check_parity({}, images), r"^check_parity: files must be a non-empty dict .*; got dict$")
    refused(lambda: api.check_parity({"onnx": "m.onnx"}, images),
            r"^check_parity: files\['onnx'\] must be a \.tflite or \.pte path; got str 'm\.onnx'$")
    refused(lambda: api.check_parity({"pte": tmp_path / "absent.pte"}, images),
            r"^check_parity: files\['pte'\]: model not found: \S+absent\.pte$")
    refused(lambda: api.check_parity({"tflite": tflite}, images, reference="float.pt"),
            r"^check_parity: reference must be a float torch\.nn\.Module, an Int8Model or None; got str 'float\.pt'$")
    refused(lambda: api.check_parity({"tflite": tflite}, images, reference=model, threads=0),
            r"^check_parity: threads must be an int >= 1; got int 0$")
    refused(lambda: api.check_parity({"tflite": tflite}, images[:, :, :4], reference=int8_model()),
            r"^check_parity: images must be \(N, 1, 8, 8\), the \(C, H, W\) the Int8Model was quantised for; got a "
            r"float32 array of shape \(4, 1, 4, 8\)$")
    refused(lambda: api.check_parity({"tflite": tflite}, np.zeros((4, 3, 8, 8), np.float32), reference=model),
            r"^check_parity: images have 3 channels .* but the model's first convolution takes 1")
    refused(lambda: api.check_parity({"tflite": tflite}, np.zeros((4, 1, 8, 8), np.uint8), reference=model),
            r"^check_parity: images must be \(N, C, H, W\) floats, an array or tensor; got a uint8 array")
    refused(lambda: api.check_parity({"tflite": tflite}, [images[0], images[1][:, :4]]),
            r"^check_parity: images must be \(N, C, H, W\) floats \(or uint8 pixels, for an app file\), an array or "
            r"tensor; got a list of 2 arrays of different shapes \(1, 8, 8\) and \(1, 4, 8\)$")
    refused(lambda: api.check_parity({"tflite": tflite}, images, LABELS[:2]),
            r"^check_parity: labels must be 1-D integer class indices, one per image \(4\); got 2 labels for 4 images$")


def test_check_parity_checks_each_file_takes_the_images_before_the_reference_runs(model, images, tmp_path,
                                                                                   monkeypatch):
    import se_edge.runner as runner

    class Reference(nn.Module):
        def forward(self, x):
            raise AssertionError("ran the reference before checking the files")

    opened = {"m.tflite": (1, 8, 8, 1), "n.pte": (1, 1, 9, 9)}  # NHWC is fine: the runner transposes
    monkeypatch.setattr(runner, "open_model", lambda path, threads: types.SimpleNamespace(
        input_shape=opened[path.rsplit("/", 1)[-1]], runtime="stub"))
    for name in opened:
        (tmp_path / name).write_bytes(b"")
    refused(lambda: api.check_parity({"tflite": tmp_path / "m.tflite", "pte": tmp_path / "n.pte"}, images,
                                     reference=Reference()),
            rf"^check_parity: files\['pte'\] \({re.escape(str(tmp_path))}/n\.pte\) takes one image of shape "
            r"\(1, 1, 9, 9\) at a time; images are \(4, 1, 8, 8\)$")


# What is valid still works

def test_valid_inputs_in_every_accepted_form_still_quantise(model, images):
    """PTQ from a list of (C, H, W) tensors; the Int8Model then runs a float64 array and a tensor alike. (The QAT
    path, the exports and check_parity run in test_api.py's README snippet.)"""
    int8 = api.to_int8(model, [torch.from_numpy(image) for image in images], LABELS, calibration_images=4)
    assert int8.kind == "ptq" and tuple(int8.sample.shape) == (1, 1, 8, 8)
    from_array, from_tensor = int8(images.astype(np.float64)), int8(torch.from_numpy(images))
    assert from_array.shape == (4, 3) and torch.equal(from_array, from_tensor)
