"""The kernel copy behind a local blob's ``write_from``: ``copy_file_range``, ``sendfile`` or
``pread``/``pwrite`` in a thread, the staged blob hashes what has landed as it goes."""

from __future__ import annotations

import errno
import os
import threading

__all__ = ["KernelCopy"]

#: Bytes per kernel copy call: how far the copy runs ahead of the observer at most.
_KERNEL_COPY_STEP = 4 * 1024 * 1024
#: Errors meaning "this kind of kernel copy is not possible here": try the next kind.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ETXTBSY}


class KernelCopy:
    """Copies ``src`` from ``src_start`` to EOF into ``dst`` at ``dst_start``, in a thread.

    ``copy_file_range`` first (a reflink on file systems that share blocks), ``sendfile``
    when that cannot cross file systems, and ``pread``/``pwrite`` as the last resort.
    """

    def __init__(self, src: int, src_start: int, dst: int, dst_start: int) -> None:
        self._src, self._src_start = src, src_start
        self._dst, self._dst_start = dst, dst_start
        self._cond = threading.Condition()
        self._copied = 0
        self._finished = False
        self._cancelled = False
        self.error: OSError | None = None

    def wait_past(self, seen: int) -> tuple[int, bool]:
        """Block until more than ``seen`` bytes are copied or the copy ended."""
        with self._cond:
            while self._copied <= seen and not self._finished:
                self._cond.wait()
            return self._copied, self._finished

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True

    def run(self) -> None:
        try:
            self._copy()
        except OSError as exc:
            self.error = exc
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _copy(self) -> None:
        kinds = [self._copy_file_range, self._sendfile, self._pread_pwrite]
        done = 0
        while True:
            with self._cond:
                if self._cancelled:
                    return
            try:
                n = kinds[0](done, _KERNEL_COPY_STEP)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY or len(kinds) == 1:
                    raise
                kinds.pop(0)
                continue
            if not n:
                return
            done += n
            with self._cond:
                self._copied = done
                self._cond.notify_all()

    def _copy_file_range(self, done: int, count: int) -> int:
        return os.copy_file_range(
            self._src, self._dst, count, self._src_start + done, self._dst_start + done
        )

    def _sendfile(self, done: int, count: int) -> int:
        os.lseek(self._dst, self._dst_start + done, os.SEEK_SET)  # sendfile writes there
        return os.sendfile(self._dst, self._src, self._src_start + done, count)

    def _pread_pwrite(self, done: int, count: int) -> int:
        data = os.pread(self._src, count, self._src_start + done)
        view = memoryview(data)
        while view:
            offset = self._dst_start + done + len(data) - len(view)
            view = view[os.pwrite(self._dst, view, offset) :]
        return len(data)
