"""A TCP relay between the device and the broker the tests start: the device's network path.

While the broker is killed the relay refuses the device (it closes every connection it accepts); once the broker is
back and the test's subscriber is listening on it, the relay lets the device through again. Without it the device's
reconnect could reach the restarted broker before the subscriber did, and what it sent in that moment would be lost
at the broker, not on the device.
"""

from __future__ import annotations

import socket
import threading

from tests.conftest import free_port


class Relay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.open = threading.Event()
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.server.settimeout(0.2)
        self.closing = False
        self.links: list[socket.socket] = []
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                device, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.open.is_set():
                device.close()
                continue
            try:
                broker = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                device.close()
                continue
            self.links += [device, broker]
            for source, target in ((device, broker), (broker, device)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        self.open.clear()
        for link in self.links:
            try:
                link.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.links = []

    def close(self) -> None:
        self.closing = True
        self.cut()
        self.server.close()
