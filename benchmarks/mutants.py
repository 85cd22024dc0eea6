"""Deliberate one-line bugs, one at a time: does a test notice each?

For every entry of BUGS, the script puts the bug into the package (one
exact, unique text replacement), runs the test files that cover that part,
and restores the file (also on Ctrl-C). A bug the tests pass is MISSED.
The list holds the 8 bugs of issue 20 (and one or more for each later
feature); add a line for new
code (a Phase-1 method, a kernel) and see it CAUGHT before calling it done.

    .venv/bin/python benchmarks/mutants.py            # every bug (~10 min)
    .venv/bin/python benchmarks/mutants.py 3 7        # those whose name starts so

Run it on a clean work tree and start nothing else from it meanwhile: the
package's files are changed while a bug's tests run. Prints one line per
bug, and the first failing tests of each caught one; exits 1 when any bug
is missed.
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, '.venv', 'bin', 'python')
if not os.path.exists(PY):
    PY = sys.executable

#: (name, file, text, replacement, test files)
BUGS = [
 ('1 expressible without +frac', 'snntb_adaptive/calibration.py',
  "np.floor(a * (steps / theta) + frac)", "np.floor(a * (steps / theta))",
  'tests/test_calibration.py'),
 ('2 CORRECTIONS = 1', 'snntb_adaptive/calibration.py',
  "CORRECTIONS = 2", "CORRECTIONS = 1", 'tests/test_calibration.py'),
 ('3a search always per layer', 'snntb_adaptive/calibration.py',
  "flat = a.reshape(-1, channels) if per_channel else a.reshape(-1, 1)",
  "flat = a.reshape(-1, 1)", 'tests/test_calibration.py'),
 ('3b search always per channel', 'snntb_adaptive/calibration.py',
  "flat = a.reshape(-1, channels) if per_channel else a.reshape(-1, 1)",
  "flat = a.reshape(-1, channels)", 'tests/test_calibration.py'),
 ('4a fingerprint without thresholds', 'snntb_adaptive/config.py',
  "'thresholds': self.calibration_thresholds,", "", 'tests/test_calibration.py'),
 ('4b fingerprint without mem_init', 'snntb_adaptive/config.py',
  "'mem_init': self.mem_init,\n", "\n", 'tests/test_calibration.py'),
 ('5 resume does not rewrite', 'snntb_adaptive/progress.py',
  "                write_atomic(self.path, text)", "                pass",
  'tests/test_hardening.py tests/test_reliability.py'),
 ('6 no descent into nested models', 'snntb_adaptive/checks.py',
  "            for value in node.values():",
  "            for value in ([] if node.get('class_name') in ('Sequential', 'Functional', 'Model') and node is not model_config else node.values()):",
  'tests/test_hardening.py'),
 ('7 Eq. 7 absolute tolerance', 'snntb_adaptive/metrics.py',
  "np.abs(acc - final) / final < tolerance", "np.abs(acc - final) < tolerance",
  'tests/test_metrics.py tests/test_golden.py'),
 ('8a simulator V_init = eta', 'snntb_adaptive/target_sim.py',
  "v_init=eta * self.v_max, v_max=self.v_max,", "v_init=eta, v_max=self.v_max,",
  'tests/test_parity.py tests/test_reference.py tests/test_end_to_end.py'),
 ('8b Phase-1 table V_init = eta', 'snntb_adaptive/normalisation.py',
  "'v_init': eta * v_max})", "'v_init': eta})",
  'tests/test_parity.py tests/test_end_to_end.py'),
 ('9 tf kernel fires on > only', 'snntb_adaptive/dynamics.py',
  "fired = tf.cast(tf.greater_equal(v, theta_b), v.dtype)",
  "fired = tf.cast(tf.greater(v, theta_b), v.dtype)",
  'tests/test_golden.py'),
 # issue 16: linear pooling, synaptic operations, potential correction,
 # burst spikes
 ('10 linear pooling keeps neurons', 'snntb_adaptive/network.py',
  "settings_from_config(config).avg_pooling == 'linear')",
  "settings_from_config(config).avg_pooling == 'spiking')",
  'tests/test_linear_pooling.py'),
 ('11 fan-out ignores pooling windows', 'snntb_adaptive/network.py',
  "    if kind in WINDOW_TYPES:", "    if False:",
  'tests/test_metrics.py tests/test_calibration.py'),
 ('12 synops of spikes, not of fan-out', 'snntb_adaptive/layers.py',
  "                                self.fan_out)",
  "                                tf.ones_like(self.fan_out))",
  'tests/test_metrics.py'),
 ('13 potential correction sign', 'snntb_adaptive/calibration.py',
  "v0 = (v0 + steps * error(over) / s_out)",
  "v0 = (v0 - steps * error(over) / s_out)",
  'tests/test_calibration.py'),
 ('14 burst without the extra spikes', 'snntb_adaptive/dynamics.py',
  "tf.cast(max_spikes, v.dtype), 1 + extra)",
  "tf.cast(max_spikes, v.dtype), extra)",
  'tests/test_dynamics.py tests/test_burst.py'),
 ('15 calibration ignores bursts', 'snntb_adaptive/calibration.py',
  "0, steps * max_spikes)", "0, steps)", 'tests/test_burst.py'),
 # issue 18
 ('16 SNN-TB evaluates config values', 'snntb_adaptive/compat.py',
  "    module.eval = literal_value", "    pass",
  'tests/test_hardening.py'),
 ('17 planted links followed', 'snntb_adaptive/checks.py',
  "if os.path.islink(here):", "if False:", 'tests/test_hardening.py'),
 ('18 forged batch index accepted', 'snntb_adaptive/progress.py',
  "if not _whole(b) or not 0 <= b < num_batches:", "if not _whole(b):",
  'tests/test_hardening.py'),
 # issue 16: the calibration horizon
 ('19 horizon ignored', 'snntb_adaptive/config.py',
  "int(round(horizon * self.calibration_steps))",
  "int(round(1.0 * self.calibration_steps))",
  'tests/test_calibration.py'),
 # issue 17: ONNX models
 ('20 flatten in Keras order only', 'snntb_adaptive/onnx_import.py',
  "perm = c * spatial + s", "perm = s * channels + c",
  'tests/test_onnx.py'),
 ('21 calibration: concatenation passes one scale',
  'snntb_adaptive/calibration.py',
  "    if _type(layer) != 'Concatenate':", "    if True:",
  'tests/test_calibration_branches.py'),
 ('22 calibration: max gate not accumulated', 'snntb_adaptive/calibration.py',
  "        gate += x[t]", "        gate = x[t]",
  'tests/test_calibration_branches.py'),
 # issue 19: event-driven synapses
 ('23 sparse: no top/left padding for same', 'snntb_adaptive/layers.py',
  "    return total // 2", "    return 0", 'tests/test_sparse.py'),
 ('24 sparse op ignores the input value',
  'snntb_adaptive/csrc/sparse_synapse.cc',
  "Axpy(orow, krow + c * co, xv[c], co);",
  "Axpy(orow, krow + c * co, 1.0f, co);", 'tests/test_sparse.py'),
 ('25 auto: no spike source', 'snntb_adaptive/target_sim.py',
  "                    self._spike_source[k] = origin[names[0]]",
  "                    pass", 'tests/test_sparse.py'),
 # issue 16: calibration_horizon = auto
 ('26 auto keeps the worst horizon', 'snntb_adaptive/calibration.py',
  "key = (-row['agreement'], row['score_rmse'])",
  "key = (row['agreement'], row['score_rmse'])",
  'tests/test_calibration_horizon.py'),
 ('27 auto judges on the calibration images',
  'snntb_adaptive/calibration.py',
  "rest = x_norm[samples:samples + n]", "rest = x_norm[:n]",
  'tests/test_calibration_horizon.py'),
 ('28 network readout not summed over the steps',
  'snntb_adaptive/calibration.py',
  "readout[:, start:stop] = np.cumsum(np.broadcast_to(",
  "readout[:, start:stop] = np.sum(np.broadcast_to(",
  'tests/test_calibration_horizon.py'),
 ('29 auto: the model keeps the last candidate',
  'snntb_adaptive/calibration.py',
  "    apply(model, {'layers': best[1]}, is_spiking)",
  "    apply(model, {'layers': records}, is_spiking)",
  'tests/test_calibration_horizon.py'),
]


def main(only):
    missed = 0
    for name, path, old, new, tests in BUGS:
        if only and not any(name.startswith(o) for o in only):
            continue
        missed += not run_one(name, path, old, new, tests)
    return 1 if missed else 0


def run_one(name, path, old, new, tests):
    """True when the tests notice the bug."""
    full = os.path.join(ROOT, path)
    with open(full) as f:
        src = f.read()
    if src.count(old) != 1:
        print('{:<36} NOT APPLIED: the text is found {} times in {}; '
              'update BUGS'.format(name, src.count(old), path))
        return False
    backup = os.path.join(tempfile.mkdtemp(), os.path.basename(path))
    shutil.copy2(full, backup)
    try:
        with open(full, 'w') as f:
            f.write(src.replace(old, new))
        r = subprocess.run([PY, '-m', 'pytest', '-q', '-x', '-p',
                            'no:cacheprovider'] + tests.split(), cwd=ROOT,
                           capture_output=True, text=True)
    finally:
        shutil.copy2(backup, full)
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    print('{:<36} {}  {}'.format(name, 'CAUGHT' if r.returncode else
                                 'MISSED', lines[-1] if lines else ''))
    for line in [x for x in lines if x.startswith('FAILED')][:2]:
        print('       ' + line[:150])
    sys.stdout.flush()
    return r.returncode != 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
