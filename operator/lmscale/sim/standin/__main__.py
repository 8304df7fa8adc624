"""`python -m lmscale.sim.standin {vllm,tgi,sglang} ARGS...`."""

from lmscale.sim.standin.main import cli_main

raise SystemExit(cli_main())
