"""Train models/digits_torch.py's CNN on scikit-learn's digits and save its
state_dict as ``models/digits_torch.pth`` (the model for the PyTorch tests
and ``configs/digits_torch.ini``).

    python models/train_digits_torch.py [--out models/digits_torch.pth]
        [--epochs 60]

Same split as models/train_digits.py (snntb_adaptive.data.load_digits);
seeded; a few seconds on two CPU cores. Prints the test accuracy.
"""

import argparse
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default=os.path.join(HERE, 'digits_torch.pth'))
    p.add_argument('--epochs', type=int, default=60)
    args = p.parse_args(argv)
    import numpy as np
    import torch
    from snntb_adaptive import data
    torch.manual_seed(0)
    spec = importlib.util.spec_from_file_location(
        'digits_torch', os.path.join(HERE, 'digits_torch.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.Model()
    x_tr, y_tr, x_te, y_te = data.load_digits()

    def tensor(x):   # (N, 8, 8, 1) in [0, 1] -> (N, 1, 8, 8)
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(
            np.asarray(x, np.float32), -1, 1)))
    xt, yt = tensor(x_tr), torch.from_numpy(np.asarray(y_tr, np.int64))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt))
        for k in range(0, len(xt), 32):
            idx = perm[k:k + 32]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(tensor(x_te)).argmax(1).numpy() == np.asarray(
            y_te)).mean()
    torch.save(model.state_dict(), args.out)
    print('test accuracy {:.4f}; saved {}'.format(acc, args.out))


if __name__ == '__main__':
    main()
