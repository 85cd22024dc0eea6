"""Train the small CNN for scikit-learn's 8x8 digits used by the offline demo
and the fast tests, and save it as ``models/digits_cnn.h5`` (tf-keras).

    python models/train_digits.py [--out models/digits_cnn.h5] [--epochs 60]

Architecture: Conv(16, 3x3, ReLU, bias) - AvgPool(2) - Conv(32, 3x3, ReLU)
- AvgPool(2) - Flatten - Dense(64, ReLU) - Dense(10, linear). Inputs in
[0, 1], shape (8, 8, 1). Runs on two CPU cores in well under a minute.
"""

import argparse
import os
import sys

os.environ['TF_USE_LEGACY_KERAS'] = '1'
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))


def build_model():
    from tensorflow import keras
    inp = keras.layers.Input((8, 8, 1))
    x = keras.layers.Conv2D(16, 3, padding='same', activation='relu')(inp)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Conv2D(32, 3, padding='same', activation='relu')(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation='relu')(x)
    out = keras.layers.Dense(10)(x)
    return keras.Model(inp, out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default=os.path.join(os.path.dirname(__file__),
                                                 'digits_cnn.h5'))
    p.add_argument('--epochs', type=int, default=60)
    p.add_argument('--seed', type=int, default=1)
    args = p.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    from tensorflow import keras
    from snntb_adaptive.data import load_digits

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    x_tr, y_tr, x_te, y_te = load_digits()
    model = build_model()
    model.compile(keras.optimizers.Adam(2e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  ['accuracy'])
    model.fit(x_tr, y_tr, batch_size=32, epochs=args.epochs, verbose=0,
              validation_data=(x_te, y_te))
    acc = float(np.mean(np.argmax(model.predict(x_te, verbose=0), 1) == y_te))
    # Saved compiled with a categorical loss, as SNN-TB evaluates the model
    # with one-hot labels.
    model.compile('sgd', 'categorical_crossentropy', ['accuracy'])
    model.save(args.out)
    print("test accuracy {:.2%} on {} digits; saved {}".format(
        acc, len(y_te), args.out))


if __name__ == '__main__':
    main()
