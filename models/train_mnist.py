"""Train the MNIST CNN used by ``configs/mnist.ini`` and the benchmarks, and
save it as ``models/mnist_cnn.h5`` (tf-keras).

    python models/train_mnist.py [--data ../shared/data/mnist.npz]
                                 [--out models/mnist_cnn.h5] [--epochs 8]

Without ``--data`` (or when the file is missing) the Keras MNIST download is
used. Architecture: Conv(16, 5x5, ReLU) - AvgPool(2) - Conv(32, 3x3, ReLU) -
AvgPool(2) - Flatten - Dense(128, ReLU) - Dropout(0.2) - Dense(10, linear).
Inputs in [0, 1], shape (28, 28, 1). About 1-2 minutes on two CPU cores.
"""

import argparse
import os
import sys

os.environ['TF_USE_LEGACY_KERAS'] = '1'
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

HERE = os.path.dirname(os.path.abspath(__file__))


def build_model():
    from tensorflow import keras
    inp = keras.layers.Input((28, 28, 1))
    x = keras.layers.Conv2D(16, 5, activation='relu')(inp)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Conv2D(32, 3, activation='relu')(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation='relu')(x)
    x = keras.layers.Dropout(0.2)(x)
    out = keras.layers.Dense(10)(x)
    return keras.Model(inp, out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=os.path.join(HERE, '..', '..', 'shared',
                                                  'data', 'mnist.npz'))
    p.add_argument('--out', default=os.path.join(HERE, 'mnist_cnn.h5'))
    p.add_argument('--epochs', type=int, default=8)
    p.add_argument('--seed', type=int, default=1)
    args = p.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    from tensorflow import keras
    from snntb_adaptive import data

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    if os.path.isfile(args.data):
        x_tr, y_tr, x_te, y_te = data.load_npz(
            args.data, ['x_train', 'y_train', 'x_test', 'y_test'])
    else:
        print("{} not found: using the Keras download".format(args.data))
        x_tr, y_tr, x_te, y_te = data.load_keras_dataset('mnist')
    x_tr = data.with_channel_axis(data.to_unit_range(x_tr))
    x_te = data.with_channel_axis(data.to_unit_range(x_te))
    model = build_model()
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  ['accuracy'])
    model.fit(x_tr, y_tr, batch_size=128, epochs=args.epochs, verbose=2)
    acc = float(np.mean(np.argmax(model.predict(x_te, verbose=0), 1) == y_te))
    model.compile('sgd', 'categorical_crossentropy', ['accuracy'])
    model.save(args.out)
    print("test accuracy {:.2%} on {} MNIST test images; saved {}".format(
        acc, len(y_te), args.out))


if __name__ == '__main__':
    main()
