"""What users would pick instead of lmscale, each implemented from its documentation.

One module per baseline: `static`, `static_peak`, `hpa_gpu_util`, `keda_queue`, and
`oracle` (a clairvoyant lower bound, not a policy). Each scaler follows the
`lmscale.sim.scaler.Scaler` interface.
"""
