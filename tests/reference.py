"""A NumPy reference of SPEC Phase 2, written from docs/spec.md alone (it
shares no code with the plugin).

It simulates a sequential net of Conv2D ('same' padding, stride 1),
AveragePooling2D (2x2), Flatten and Dense layers, with the IF neurons and the
threshold update of docs/spec.md, in float64.
"""

import numpy as np


def conv2d_same(x, w, b):
    """x (B, H, W, Cin), w (kh, kw, Cin, Cout) cross-correlation, 'same'."""
    kh, kw = w.shape[:2]
    ph, pw = kh // 2, kw // 2
    xp = np.pad(x, ((0, 0), (ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)))
    H, W = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (w.shape[3],))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum('bhwc,cd->bhwd', xp[:, i:i + H, j:j + W, :],
                             w[i, j])
    return out + b


def avgpool2(x):
    B, H, W, C = x.shape
    return x.reshape(B, H // 2, 2, W // 2, 2, C).mean(axis=(2, 4))


def impulse(layer, a):
    kind = layer['kind']
    if kind == 'conv':
        return conv2d_same(a, layer['w'], layer['b'])
    if kind == 'avgpool':
        return avgpool2(a)
    if kind == 'dense':
        return a.reshape(len(a), -1) @ layer['w'] + layer['b']
    raise ValueError(kind)


def simulate(layers, x, T, etas, v_max, update, scope):
    """Return per spiking layer an array (T, B, ...) of spikes (0/1), and
    per layer the thresholds (T, B)."""
    B = len(x)
    x = np.asarray(x, np.float64)
    mem = [None] * len(layers)
    theta = [np.full(B, eta * v_max) for eta in etas]
    v_init = [eta * v_max for eta in etas]
    spikes = [[] for _ in layers]
    thetas = [[] for _ in layers]
    for _ in range(T):
        a = x  # constant current input
        for k, layer in enumerate(layers):
            I = impulse(layer, a)
            if mem[k] is None:
                mem[k] = np.zeros_like(I)
            # z_t: max of the input impulse, bias included
            if scope == 'sample':
                z = I.reshape(B, -1).max(axis=1)
            else:
                z = np.full(B, I.max())
            if update == 'clamp':
                theta[k] = np.minimum(np.maximum(theta[k], z), v_max)
            elif update == 'window':
                theta[k] = np.where((v_init[k] < z) & (z < v_max), z,
                                    theta[k])
            # update == 'none': unchanged
            th = theta[k].reshape((B,) + (1,) * (I.ndim - 1))
            v = mem[k] + I
            s = v >= th
            out = s * v_max
            mem[k] = v - out
            spikes[k].append(s.astype(np.int8))
            thetas[k].append(theta[k].copy())
            a = out
    return ([np.stack(s) for s in spikes], [np.stack(t) for t in thetas])
