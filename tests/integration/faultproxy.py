"""A fault-injecting TCP proxy between the reaper and a real redis-server.

The proxy runs an asyncio loop in a thread of its own; a test points the
reaper at proxy.url and switches faults on and off from its own thread while
the traffic flows. Directions: "up" is the client's bytes to the server,
"down" the server's replies to the client.

  latency(s, direction)   hold each chunk s seconds before passing it on
  bandwidth(bps, direction)  at most bps bytes a second
  blackhole() / heal()    stop forwarding both ways, both sockets kept open:
                          nothing is read, so the kernels' buffers fill as
                          with a dead route; heal() delivers what waited, in
                          order, as TCP would after retransmitting
  pause(direction) / resume(direction)  the same for one direction
  half_open()             drop the server side of every open connection (a
                          reset Redis sees) and tell the client nothing: its
                          socket stays open and its bytes go nowhere
  reset_mid_reply(n)      the next reply: pass n bytes, then reset the
                          client's connection (RST)
  split(True)             replies byte by byte, one send each
  refuse(True)            accept new connections and reset them at once

Counters: connections (accepted), open (now), bytes_up, bytes_down,
pieces_down (the sends that carried them), resets. Every connection opened afterwards sees the faults in force, and so
do those already open.
"""

import asyncio
import contextlib
import socket
import struct
import threading
import time

DIRECTIONS = ("up", "down")
CHUNK = 65536


def _dirs(direction):
    if direction == "both":
        return DIRECTIONS
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: up, down or both, not {direction!r}")
    return (direction,)


def _rst(writer):
    """Close with a reset rather than a FIN (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class _Link:
    """One client connection and its own connection to the server."""

    def __init__(self, proxy, creader, cwriter, sreader, swriter):
        self.p = proxy
        self.ends = {"up": (creader, swriter), "down": (sreader, cwriter)}
        self.cwriter, self.swriter = cwriter, swriter
        self.server_gone = False
        self.closed = False

    async def pump(self, direction):
        """Read one direction into a queue, each chunk stamped with when it
        may go on; write it from there: latency delays, never throttles."""
        reader, writer = self.ends[direction]
        queue = asyncio.Queue()
        sender = asyncio.ensure_future(self.drain_queue(direction, writer, queue))
        try:
            while not self.closed:
                await self.p.flowing(direction)
                data = await reader.read(CHUNK)
                if not data:
                    break
                queue.put_nowait((self.p.loop.time() + self.p.state[direction]["latency"], data))
        except (ConnectionError, OSError):
            pass
        queue.put_nowait((0, None))
        await sender
        if not self.server_gone or direction == "up":
            self.close()

    async def drain_queue(self, direction, writer, queue):
        try:
            while True:
                due, data = await queue.get()
                if data is None:
                    return
                wait = due - self.p.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self.p.flowing(direction)
                if direction == "up" and self.server_gone:
                    continue                    # half-open: into the void
                if not await self.send(direction, writer, data):
                    return
        except (ConnectionError, OSError):
            self.close()

    async def send(self, direction, writer, data):
        st = self.p.state[direction]
        if direction == "down" and self.p.reset_after is not None:
            n, self.p.reset_after = self.p.reset_after, None
            writer.write(data[:n])
            await writer.drain()
            self.p.resets += 1
            _rst(self.cwriter)
            self.closed = True
            self.swriter.close()
            return False
        pieces = [data[i:i + 1] for i in range(len(data))] \
            if direction == "down" and self.p.split_replies else [data]
        for piece in pieces:
            if st["bandwidth"]:
                await asyncio.sleep(len(piece) / st["bandwidth"])   # the time it takes to pass
            if direction == "down":
                self.p.pieces_down += 1
            setattr(self.p, "bytes_" + direction, getattr(self.p, "bytes_" + direction) + len(piece))
            writer.write(piece)
            await writer.drain()
            if len(pieces) > 1:
                await asyncio.sleep(0)
        return True

    def drop_server(self):
        self.server_gone = True
        _rst(self.swriter)

    def close(self):
        if self.closed:
            return
        self.closed = True
        for w in (self.cwriter, self.swriter):
            w.close()


class FaultProxy:
    def __init__(self, host, port):
        self.target = (host, port)
        self.state = {d: {"latency": 0.0, "bandwidth": 0, "paused": False} for d in DIRECTIONS}
        self.split_replies = False
        self.refusing = False
        self.reset_after = None
        self.connections = self.resets = self.bytes_up = self.bytes_down = 0
        self.pieces_down = 0
        self.links = set()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="faultproxy")
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("the fault proxy did not start")
        self.url = f"redis://127.0.0.1:{self.port}"

    # --- the loop's side --------------------------------------------------
    def _run(self):
        asyncio.set_event_loop(self.loop)
        self._changed = asyncio.Condition()
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        self.loop.close()

    async def flowing(self, direction):
        async with self._changed:
            await self._changed.wait_for(lambda: not self.state[direction]["paused"])

    async def _accept(self, creader, cwriter):
        self.connections += 1
        if self.refusing:
            self.resets += 1
            _rst(cwriter)
            return
        try:
            sreader, swriter = await asyncio.open_connection(*self.target)
        except OSError:
            _rst(cwriter)
            return
        for w in (cwriter, swriter):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(self, creader, cwriter, sreader, swriter)
        self.links.add(link)
        try:
            await asyncio.gather(link.pump("up"), link.pump("down"))
        finally:
            self.links.discard(link)

    async def _notify(self):
        async with self._changed:
            self._changed.notify_all()

    # --- the test's side --------------------------------------------------
    def _call(self, fn):
        """Run fn on the loop and wait for it: a fault is in force on return."""
        async def go():
            fn()
            await self._notify()
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(5)

    @property
    def open(self):
        return len(self.links)

    def latency(self, seconds, direction="both"):
        self._call(lambda: [self.state[d].update(latency=seconds) for d in _dirs(direction)])

    def bandwidth(self, bytes_per_second, direction="both"):
        self._call(lambda: [self.state[d].update(bandwidth=bytes_per_second)
                            for d in _dirs(direction)])

    def pause(self, direction="both"):
        self._call(lambda: [self.state[d].update(paused=True) for d in _dirs(direction)])

    def resume(self, direction="both"):
        self._call(lambda: [self.state[d].update(paused=False) for d in _dirs(direction)])

    def blackhole(self):
        self.pause("both")

    def heal(self):
        self.resume("both")

    def split(self, on=True):
        self._call(lambda: setattr(self, "split_replies", on))

    def refuse(self, on=True):
        self._call(lambda: setattr(self, "refusing", on))

    def reset_mid_reply(self, after_bytes):
        self._call(lambda: setattr(self, "reset_after", after_bytes))

    def half_open(self):
        self._call(lambda: [link.drop_server() for link in list(self.links)])

    def close(self):
        if not self.loop.is_running():
            return

        async def stop():
            self.server.close()
            for link in list(self.links):
                link.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()
        asyncio.run_coroutine_threadsafe(stop(), self.loop)
        self._thread.join(5)

    def wait_open(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while self.open < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.open} connections through the proxy, "
                                     f"waited for {n}")
            time.sleep(0.01)


@contextlib.contextmanager
def fault_proxy(port, host="127.0.0.1"):
    """A FaultProxy in front of host:port, closed however the block ends."""
    p = FaultProxy(host, port)
    try:
        yield p
    finally:
        p.close()
