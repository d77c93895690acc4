package lb

import (
	"syscall"
	"unsafe"
)

// rawWaitSupported: an idle http connection waits for its client without
// a buffer (httpConn.wait).
const rawWaitSupported = true

// peekReady reports whether the socket fd has a byte to read, has ended or
// has an error pending: anything but "nothing yet". It reads nothing
// (MSG_PEEK) and never blocks; like rawRead it does not tell the
// scheduler.
func peekReady(fd uintptr) bool {
	var b byte
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b)), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if e != syscall.EINTR {
			return e != syscall.EAGAIN
		}
	}
}
