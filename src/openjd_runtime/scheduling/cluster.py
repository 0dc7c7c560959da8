"""Running a job's worker sessions on the workers of an existing Dask `distributed` cluster.

The scheduler of the run (which task runs next, fail-fast, results) stays in the calling process.
Each of its workers is one long Dask task, pinned to one thread of one cluster worker, that runs
the same worker loop as a local run on an event loop of its own. The two sides talk through a
pair of `distributed.Queue`s per worker, held by the Dask scheduler: the worker asks for tasks and
streams its output lines, statuses and results up while actions run; the run sends tasks and
stop, cancel and abort requests. Each side pings when it has nothing else to say, so a read only
times out when the other side is gone: a worker that hears nothing for `LOST_AFTER` seconds
stops its action and exits its environments, and the run counts a silent worker as lost. When a
worker has finished, the run says goodbye, so that neither side leaves a read pending.

What the cluster needs:

- `openjd-runtime` (the version the run uses) installed in every Dask worker's Python
  environment, with `distributed`, and the programs the job's actions run.
- The job's files (scripts, assets, the paths its parameters name) at the same paths on every
  worker host, e.g. on a shared filesystem; path mapping rules apply as on one host. Each session's
  working directory is local to its worker host (`session_root_directory` must exist there).
- One free worker thread per run worker for the whole run: the run starts one worker per thread
  of the cluster unless told otherwise, spreading them over the cluster's workers.
- The Dask scheduler reachable from the calling process; the workers need no other port, since
  everything goes through the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import secrets
import time
from typing import Any

from ..jobs import JobRunSpec
from .coordinator import Coordinator, JobRunBase, run_all
from .events import WorkerEvent
from .records import JobRunResult, OnEvent, TaskRef
from .wire import (
    ABORT,
    CANCEL,
    FINISHED,
    NEXT,
    PING,
    STOP,
    TASK,
    Message,
    decode_event,
    decode_task,
    encode_event,
    encode_task,
)
from .worker import Worker

PING_SECONDS = 2.0
LOST_AFTER = 30.0
"""Silence for this long means the other side is gone."""

_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)


class ClusterError(Exception):
    """The run cannot use the cluster: `distributed` is missing, or the cluster is unreachable
    or has no workers."""


def _distributed() -> Any:
    try:
        return importlib.import_module("distributed")
    except ImportError as exc:
        raise ClusterError(
            "Running on a Dask cluster needs the 'distributed' package: "
            "pip install 'openjd-runtime[dask]'"
        ) from exc


def _queue_names(run_id: str, index: int) -> tuple[str, str]:
    """The queue a worker sends on, and the one it receives on."""
    return f"ojd-{run_id}-{index}-up", f"ojd-{run_id}-{index}-down"


async def _batch(outbox: asyncio.Queue[Message | None], wait: float) -> list[Message | None]:
    """What is waiting in the outbox, or [] when nothing came within `wait` seconds."""
    try:
        first = await asyncio.wait_for(outbox.get(), wait)
    except _TIMEOUTS:
        return []
    batch = [first]
    while not outbox.empty():
        batch.append(outbox.get_nowait())
    return batch


async def _pump(outbox: asyncio.Queue[Message | None], queue: Any) -> None:
    """Sends the outbox's messages in batches, and a ping after `PING_SECONDS` of quiet; ends
    once it has sent what came before a None."""
    while True:
        batch = await _batch(outbox, PING_SECONDS)
        messages = [m for m in batch if m is not None] if batch else [[PING]]
        if messages:
            await queue.put(messages)
        if None in batch:
            return


async def _settled(future: Any) -> None:
    """Waits for a Dask future to finish, whether it succeeds or not."""
    with contextlib.suppress(Exception):
        await future


class ClusterJobRun(JobRunBase):
    """A job run by worker sessions on a Dask cluster; `run()` and `cancel()` as `JobRun`'s.

    `workers` defaults to the number of threads the cluster has; `connect_timeout` (seconds) to
    Dask's own setting, `distributed.comm.timeouts.connect`.
    """

    def __init__(
        self,
        spec: JobRunSpec,
        *,
        cluster: str,
        workers: int | None = None,
        keep_going: bool = False,
        on_event: OnEvent | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"A job needs at least one worker; got {workers}.")
        super().__init__(spec, keep_going=keep_going, on_event=on_event)
        self._address = cluster
        self._workers = workers
        self._connect_timeout = connect_timeout

    async def run(self) -> JobRunResult:
        distributed = _distributed()
        started = time.monotonic()
        timeout = {} if self._connect_timeout is None else {"timeout": self._connect_timeout}
        try:
            distributed.comm.get_address_host_port(self._address)
            client = await distributed.Client(
                self._address, asynchronous=True, set_as_default=False, **timeout
            )
        except (OSError, ValueError, *_TIMEOUTS) as exc:
            raise ClusterError(
                f"Cannot connect to the Dask scheduler at {self._address}: {exc}"
            ) from exc
        try:
            slots = await self._slots(client)
            count = self._workers or len(slots)
            placement = [slots[index % len(slots)] for index in range(count)]
            scheduler, coordinator = self._start(placement)
            run_id = secrets.token_hex(6)
            remotes = [
                _RemoteWorker(index, location, run_id, client, coordinator, self._spec)
                for index, location in enumerate(placement)
            ]
            for remote in remotes:
                coordinator.attach(remote)
            await self._supervise(coordinator, [remote.serve() for remote in remotes])
        finally:
            await client.close()
        return scheduler.result(time.monotonic() - started)

    async def _slots(self, client: Any) -> list[str]:
        """One entry per worker thread, taking the cluster's workers in turn."""
        identity = await client.scheduler.identity(n_workers=-1)
        threads = {address: int(info["nthreads"]) for address, info in identity["workers"].items()}
        if not threads:
            raise ClusterError(f"The Dask cluster at {self._address} has no workers.")
        slots: list[str] = []
        for turn in range(max(threads.values())):
            slots.extend(address for address in sorted(threads) if threads[address] > turn)
        return slots


async def run_job_on_cluster(
    spec: JobRunSpec,
    *,
    cluster: str,
    workers: int | None = None,
    keep_going: bool = False,
    on_event: OnEvent | None = None,
) -> JobRunResult:
    """Runs the job's worker sessions on the Dask cluster at `cluster`; see `ClusterJobRun`."""
    run = ClusterJobRun(
        spec, cluster=cluster, workers=workers, keep_going=keep_going, on_event=on_event
    )
    return await run.run()


class _RemoteWorker:
    """The run's end of one worker on the cluster: submits it, answers it, relays what it says."""

    def __init__(
        self,
        index: int,
        location: str,
        run_id: str,
        client: Any,
        coordinator: Coordinator,
        spec: JobRunSpec,
    ) -> None:
        self._index = index
        self._location = location
        self._run_id = run_id
        self._client = client
        self._coordinator = coordinator
        self._spec = spec
        self._outbox: asyncio.Queue[Message | None] = asyncio.Queue()

    def stop(self) -> None:
        self._outbox.put_nowait([STOP])

    def cancel(self) -> None:
        self._outbox.put_nowait([CANCEL])

    def abort(self) -> None:
        self._outbox.put_nowait([ABORT])

    async def serve(self) -> None:
        distributed = _distributed()
        up_name, down_name = _queue_names(self._run_id, self._index)
        up = await distributed.Queue(up_name, client=self._client)
        down = await distributed.Queue(down_name, client=self._client)
        future = self._client.submit(
            serve_worker,
            self._spec,
            self._index,
            self._run_id,
            key=f"ojd-worker-{self._run_id}-{self._index}",
            workers=[self._location],
            allow_other_workers=False,
            pure=False,
        )
        try:
            await run_all([self._receive(up, future), _pump(self._outbox, down)])
        finally:
            up.close()
            down.close()

    async def _receive(self, up: Any, future: Any) -> None:
        """Relays the worker's messages until it has finished, failed or gone silent."""
        ended = asyncio.ensure_future(_settled(future))
        try:
            while True:
                reading = asyncio.ensure_future(up.get(timeout=LOST_AFTER))
                await asyncio.wait([reading, ended], return_when=asyncio.FIRST_COMPLETED)
                if not reading.done() and future.status != "finished":
                    reading.cancel()
                    self._coordinator.worker_lost(self._index, await self._why_lost(future))
                    return
                try:
                    batch = await reading
                except _TIMEOUTS:
                    self._coordinator.worker_lost(self._index, await self._why_lost(future))
                    return
                if await self._handle(batch):
                    self._outbox.put_nowait([FINISHED])
                    await ended
                    return
        finally:
            ended.cancel()
            self._outbox.put_nowait(None)

    async def _handle(self, batch: list[Message]) -> bool:
        """Acts on one batch of the worker's messages; True once the worker has finished."""
        for message in batch:
            kind = message[0]
            if kind == FINISHED:
                return True
            if kind == PING:
                continue
            if kind == NEXT:
                task = await self._coordinator.next_task(self._index, message[1])
                self._outbox.put_nowait([TASK, encode_task(task) if task is not None else None])
            else:
                self._coordinator.report(decode_event(message))
        return False

    async def _why_lost(self, future: Any) -> str:
        where = f"Worker {self._index} on {self._location}"
        if not future.done():
            return f"{where} was silent for {LOST_AFTER:.0f} seconds."
        try:
            await future
        except Exception as exc:
            return f"{where} was lost: {exc!r}"
        return f"{where} ended without finishing its work."


def serve_worker(spec: JobRunSpec, index: int, run_id: str) -> None:
    """The Dask task: one worker of the run, on a loop of its own in this worker thread."""
    asyncio.run(_serve_worker(spec, index, run_id))


async def _serve_worker(spec: JobRunSpec, index: int, run_id: str) -> None:
    distributed = _distributed()
    up_name, down_name = _queue_names(run_id, index)
    address = distributed.get_worker().scheduler.address
    async with distributed.Client(address, asynchronous=True, set_as_default=False) as client:
        up = await distributed.Queue(up_name, client=client)
        down = await distributed.Queue(down_name, client=client)
        link = _RunLink()
        worker = Worker(index, spec, link, session_prefix=f"ojd-{run_id}")
        receiving = asyncio.ensure_future(link.receive(down, worker))
        try:
            await run_all([link.work(worker), link.send(up)])
            await receiving
        finally:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiving
            up.close()
            down.close()


class _RunLink:
    """The worker's end: the `Link` its worker loop talks to, relaying to and from the run."""

    def __init__(self) -> None:
        self._outbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self._reply: asyncio.Future[Any] | None = None
        self._run_gone = False

    async def next_task(self, worker: int, current_step: str | None) -> TaskRef | None:
        if self._run_gone:
            return None
        self._reply = asyncio.get_running_loop().create_future()
        self._outbox.put_nowait([NEXT, current_step])
        task = await self._reply
        return decode_task(task) if task is not None else None

    def report(self, event: WorkerEvent) -> None:
        self._outbox.put_nowait(encode_event(event))

    async def work(self, worker: Worker) -> None:
        try:
            await worker.run()
        finally:
            self._outbox.put_nowait([FINISHED])
            self._outbox.put_nowait(None)

    async def send(self, up: Any) -> None:
        await _pump(self._outbox, up)

    async def receive(self, down: Any, worker: Worker) -> None:
        """Acts on what the run sends until it says goodbye, or until it has been silent so
        long that it must be gone."""
        while True:
            try:
                batch = await down.get(timeout=LOST_AFTER)
            except _TIMEOUTS:
                break
            for message in batch:
                if message[0] == FINISHED:
                    return
                self._dispatch(message, worker)
        self._run_gone = True
        worker.stop()
        self._answer(None)

    def _dispatch(self, message: Message, worker: Worker) -> None:
        kind = message[0]
        if kind == TASK:
            self._answer(message[1])
        elif kind == STOP:
            worker.stop()
        elif kind == CANCEL:
            worker.cancel()
        elif kind == ABORT:
            worker.abort()

    def _answer(self, task: Any) -> None:
        if self._reply is not None and not self._reply.done():
            self._reply.set_result(task)
