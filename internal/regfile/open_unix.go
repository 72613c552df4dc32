//go:build unix

package regfile

import (
	"os"
	"syscall"
)

// open opens without blocking: O_NONBLOCK makes the open of a FIFO return
// at once (and a device's, for those that would wait), and reads of a
// regular file are unaffected by it.
func open(path string, noFollow bool) (*os.File, error) {
	flags := os.O_RDONLY | syscall.O_NONBLOCK
	if noFollow {
		flags |= syscall.O_NOFOLLOW
	}
	return os.OpenFile(path, flags, 0)
}
