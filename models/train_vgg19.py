"""Train the paper's VGG-19 for CIFAR-10 or CIFAR-100 (tf-keras), for users
with a GPU: 16 conv layers with BatchNorm and ReLU, 2x2 average pooling
after each block, dropout, two fully-connected layers (4096 wide as the
authors', ``--fc 512`` as ``../shared/models/cifar10_vgg19.h5``) and a
linear output layer; inputs in [0, 1].

    python models/train_vgg19.py --dataset cifar10 --out cifar10_vgg19.h5
        [--fc 4096] [--epochs 300] [--batch-size 128]
        [--data ../shared/data/cifar10_train.npz]

Optimiser as the paper's Sec. 5: SGD with momentum 0.9, weight decay 5e-4,
learning rate 0.1 divided by 10 at 50 % and 75 % of the epochs; random crops
(4-pixel padding) and horizontal flips. Without ``--data`` the Keras
download is used. On 2 CPU cores one epoch takes hours: use a GPU.
"""

import argparse
import os
import sys

os.environ['TF_USE_LEGACY_KERAS'] = '1'
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

BLOCKS = [(64, 2), (128, 2), (256, 4), (512, 4), (512, 4)]


def build_model(num_classes, fc=4096, dropout=0.5, weight_decay=5e-4):
    from tensorflow import keras
    reg = keras.regularizers.l2(weight_decay)
    inp = keras.layers.Input((32, 32, 3))
    x = inp
    for filters, convs in BLOCKS:
        for _ in range(convs):
            x = keras.layers.Conv2D(filters, 3, padding='same',
                                    use_bias=False, kernel_regularizer=reg)(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation('relu')(x)
        x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    for _ in range(2):
        x = keras.layers.Dropout(dropout)(x)
        x = keras.layers.Dense(fc, kernel_regularizer=reg)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation('relu')(x)
    out = keras.layers.Dense(num_classes, kernel_regularizer=reg)(x)
    return keras.Model(inp, out, name='vgg19')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--dataset', choices=['cifar10', 'cifar100'],
                   default='cifar10')
    p.add_argument('--data', help='.npz with x_train, y_train, x_test, '
                   'y_test (uint8 images); default: Keras download')
    p.add_argument('--out', required=True)
    p.add_argument('--fc', type=int, default=4096)
    p.add_argument('--epochs', type=int, default=300)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--seed', type=int, default=1)
    args = p.parse_args(argv)
    if os.path.exists(args.out):
        p.error('{} exists; choose another --out'.format(args.out))

    import numpy as np
    import tensorflow as tf
    from tensorflow import keras
    from snntb_adaptive import data

    keras.utils.set_random_seed(args.seed)
    if args.data:
        x_tr, y_tr, x_te, y_te = data.load_npz(
            args.data, ['x_train', 'y_train', 'x_test', 'y_test'])
    else:
        x_tr, y_tr, x_te, y_te = data.load_keras_dataset(args.dataset)
    x_tr, x_te = data.to_unit_range(x_tr), data.to_unit_range(x_te)
    y_tr, y_te = y_tr.reshape(-1), y_te.reshape(-1)
    num_classes = 100 if args.dataset == 'cifar100' else 10

    def augment(x, y):
        x = tf.image.random_flip_left_right(x)
        x = tf.image.pad_to_bounding_box(x, 4, 4, 40, 40)
        x = tf.image.random_crop(x, (32, 32, 3))
        return x, y

    train = (tf.data.Dataset.from_tensor_slices((x_tr, y_tr))
             .shuffle(50000, seed=args.seed).map(augment)
             .batch(args.batch_size).prefetch(2))
    steps = len(x_tr) // args.batch_size + 1
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [steps * args.epochs // 2, steps * args.epochs * 3 // 4],
        [0.1, 0.01, 0.001])
    model = build_model(num_classes, args.fc)
    model.compile(keras.optimizers.SGD(schedule, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  ['accuracy'])
    model.fit(train, epochs=args.epochs, validation_data=(x_te, y_te),
              verbose=2)
    acc = float(np.mean(np.argmax(model.predict(x_te, verbose=0), 1) == y_te))
    model.compile('sgd', 'categorical_crossentropy', ['accuracy'])
    model.save(args.out)
    print("test accuracy {:.2%}; saved {}".format(acc, args.out))


if __name__ == '__main__':
    main()
