"""A TCP proxy on loopback that delays every chunk by a fixed time in each direction.

`DelayProxy(upstream_host, upstream_port, one_way=0.025)` adds 50 ms of round-trip time to an SSH
server, like a device on a distant network. It runs an asyncio loop in a daemon thread; `stop()`
closes everything. Order is preserved per direction (a FIFO with due times); no bandwidth limit.
"""

from __future__ import annotations

import asyncio
import threading
import time


class DelayProxy:
    def __init__(self, upstream_host: str, upstream_port: int, one_way: float = 0.025,
                 listen: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.one_way = one_way
        self.host = listen
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def pump_in() -> None:
            while True:
                data = await reader.read(65536)
                await queue.put((time.monotonic() + self.one_way, data))
                if not data:
                    return

        async def pump_out() -> None:
            while True:
                due, data = await queue.get()
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        try:
            await asyncio.gather(pump_in(), pump_out())
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            u_reader, u_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            c_writer.close()
            return
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await asyncio.gather(self._pipe(c_reader, u_writer), self._pipe(u_reader, c_writer))
        finally:
            self._tasks.discard(task)

    async def _main(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        async with self._server:
            await self._server.serve_forever()

    def start(self) -> "DelayProxy":
        def runner() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.create_task(self._main())
            try:
                self._loop.run_forever()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=runner, name="delay-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("delay proxy did not start")
        return self

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.get_running_loop().stop()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        self._thread.join(10)
        self._thread = None
