"""Seeds sharded over several (faked) CPU devices give the same result as one device."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from ltbench import methods
    from ltbench.data import synthetic
    from ltbench.methods.baselines import ModelConfig
    from ltbench.train import TrainConfig, train
    bundle = synthetic.generate(synthetic.SyntheticConfig(num_users=120, num_items=60, seed=5))
    cfg = TrainConfig(epochs=2, batch_size=64, log_every=0)
    m = methods.build("two_tower", bundle, ModelConfig(embed_dim=8, sizes=(16, 8)), cfg)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(4)])
    r = train(m, bundle.device_arrays(), bundle.num_train, keys, cfg)
    leaf = jax.tree.leaves(r.params)[0]
    print(jax.device_count(), len(leaf.sharding.device_set))
    np.save(sys.argv[1], r.losses)
""")


def start(tmp_path, devices):
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
  out = tmp_path / f"losses{devices}.npy"
  proc = subprocess.Popen([sys.executable, "-c", "import sys\n" + SCRIPT, str(out)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  return proc, out


def finish(proc, out):
  stdout, stderr = proc.communicate(timeout=300)
  assert proc.returncode == 0, stderr[-2000:]
  return stdout.split(), out


def test_seed_axis_is_sharded_and_results_match(tmp_path):
  import numpy as np
  # Both processes at once: each is mostly single-threaded compilation.
  runs = [start(tmp_path, 1), start(tmp_path, 2)]
  (n1, d1), one = finish(*runs[0])
  (n2, d2), two = finish(*runs[1])
  assert (n1, d1) == ("1", "1") and (n2, d2) == ("2", "2")
  np.testing.assert_allclose(np.load(one), np.load(two), rtol=1e-5)
