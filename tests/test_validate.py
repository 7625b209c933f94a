"""Networks from any source are checked before the C operators see them: a weight whose shape
disagrees with the channel chain (which would make a kernel read or write out of bounds) is a
ModelFormatError naming the layer."""
import copy

import numpy as np
import pytest

import tinymobile
from tinymobile.errors import ModelFormatError
from tinymobile.model import Model
from tinymobile.network import Conv3x3, Depthwise3x3, FullyConnected, GlobalPool, Pointwise, mobilenet_v1
from tinymobile.validate import check_network


@pytest.fixture(scope="module")
def net():
    return mobilenet_v1(alpha=0.25, resolution=32, num_classes=5, seed=0)


def broken(net, change):
    n = copy.deepcopy(net)
    change(n)
    return n


def f32(*shape):
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize("change,message", [
    (lambda n: setattr(n.layers[1], "w", f32(1, 1, 8)), "dw1.*shape"),          # 1x1 taps: would over-read
    (lambda n: setattr(n.layers[1], "b", f32(9)), "dw1.*b has shape"),
    (lambda n: setattr(n.layers[2], "w", f32(9, 16)), "pw1.*shape"),            # breaks the chain
    (lambda n: setattr(n.layers[0], "w", f32(3, 3, 4, 8)), "conv0.*shape"),     # 4 input channels
    (lambda n: setattr(n.layers[0], "w", f32(5, 5, 3, 8)), "conv0.*shape"),
    (lambda n: setattr(n.layers[-1], "w", np.zeros((256, 5), np.int32)), "fc.*floating"),
    (lambda n: setattr(n.layers[-1], "b", np.full(5, np.inf, np.float32)), "fc.*infinity"),
    (lambda n: setattr(n.layers[1], "stride", 3), "dw1.*stride"),
    (lambda n: setattr(n, "resolution", 0), "resolution"),
    (lambda n: setattr(n, "resolution", 5000), "resolution"),
    (lambda n: setattr(n, "activation", "gelu"), "activation"),
    (lambda n: setattr(n, "padding", "reflect"), "padding"),
    (lambda n: setattr(n, "input_std", np.zeros(3)), "input_std"),
    (lambda n: setattr(n, "labels", ["a"]), "labels"),
    (lambda n: n.layers.pop(-2), "fully connected layer must follow"),           # no pool
    (lambda n: n.layers.insert(3, GlobalPool()), "only one fully connected"),
    (lambda n: n.layers.append(FullyConnected("fc2", f32(5, 5), f32(5))), "only one fully connected"),
    (lambda n: n.layers.insert(1, "not a layer"), "does not run"),
])
def test_broken_networks_are_refused(net, change, message):
    bad = broken(net, change)
    with pytest.raises(ModelFormatError, match=message):
        check_network(bad)
    with pytest.raises(ModelFormatError, match=message):
        Model(bad, threads=1)


def test_valid_networks_pass(net):
    check_network(net)
    check_network(mobilenet_v1(alpha=0.3, resolution=33, num_classes=0, seed=1, padding="symmetric"))
    check_network(mobilenet_v1(alpha=0.25, resolution=32, num_classes=3, separable=False))


def test_huge_activation_is_refused(net):
    n = broken(net, lambda n: setattr(n, "resolution", 4096))
    n.layers[0] = Conv3x3("conv0", 2, f32(3, 3, 3, 600), f32(600))
    n.layers[1] = Depthwise3x3("dw1", 1, f32(3, 3, 600), f32(600))
    n.layers[2] = Pointwise("pw1", f32(600, 16), f32(16))
    with pytest.raises(ModelFormatError, match="conv0.*activation"):
        check_network(n)


def test_build_reports_out_of_range_resolution():
    with pytest.raises(tinymobile.TinyMobileError, match="resolution"):
        tinymobile.build(alpha=0.25, resolution=5000, threads=1)
