"""A Python SDK worker pool that several Flink TaskManagers on one host can share.

Beam's ``worker_pool_main`` keys its workers by the id the runner gives them, and a
TaskManager numbers its workers from ``1-1`` up, so two TaskManagers on one host ask for
the same ids: the first ``StopWorker("1-1")`` then killed the other TaskManager's busy
worker and failed the job (measured with two single-slot TaskManagers). On Kubernetes
each TaskManager pod has its own pool; here they share one, so this pool starts a worker
process per request whatever its id, sends its output to the pool's log, and leaves
stopping to the runner: a worker exits when its TaskManager closes the control stream.

Run: ``python -m pipeline.services.worker_pool --port 50000``.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc

log = logging.getLogger("wirestream.worker_pool")


class SharedWorkerPool(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
    """Start one SDK worker process per request; reap those that have exited."""

    def __init__(self) -> None:
        self.workers: list[subprocess.Popen] = []
        self.lock = threading.Lock()

    def StartWorker(self, request, context):  # noqa: N802 (gRPC method name)
        harness = (
            "from apache_beam.runners.worker.sdk_worker import SdkHarness; "
            f"SdkHarness({request.control_endpoint.url!r}, worker_id={request.worker_id!r}, "
            "state_cache_size=0, data_buffer_time_limit_ms=-1).run()"
        )
        try:
            worker = subprocess.Popen([sys.executable, "-c", harness], stdin=subprocess.DEVNULL)
        except OSError as exc:
            return beam_fn_api_pb2.StartWorkerResponse(error=f"cannot start a worker: {exc}")
        log.info(
            "worker %s (pid %d) for %s", request.worker_id, worker.pid, request.control_endpoint.url
        )
        with self.lock:
            self.workers = [w for w in self.workers if w.poll() is None] + [worker]
        return beam_fn_api_pb2.StartWorkerResponse()

    def StopWorker(self, request, context):  # noqa: N802
        # Ids repeat across TaskManagers, so an id does not say which worker to stop;
        # the worker ends by itself when its runner closes the connection.
        return beam_fn_api_pb2.StopWorkerResponse()

    def stop_all(self) -> None:
        with self.lock:
            for worker in self.workers:
                worker.terminate()


def serve(port: int) -> None:
    """Serve the pool on ``127.0.0.1:port`` until interrupted."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    pool = SharedWorkerPool()
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise SystemExit(f"error: cannot listen on 127.0.0.1:{port}")
    server.start()
    log.info("worker pool listening on 127.0.0.1:%d", port)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        pool.stop_all()
        server.stop(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.services.worker_pool")
    parser.add_argument("--port", type=int, default=50000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(args.port)


if __name__ == "__main__":
    main()
