"""A local Ray instance for the campaign tests: started with 2 CPUs, prints its GCS address on
stdout, and stops when it gets SIGTERM. The tests join it with ``--address`` as a cluster node's
driver would."""

import signal
import sys
import time

import ray

ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
print(ray.get_runtime_context().gcs_address, flush=True)


def _stop(*_):
    ray.shutdown()
    sys.exit(0)


signal.signal(signal.SIGTERM, _stop)
while True:
    time.sleep(1)
