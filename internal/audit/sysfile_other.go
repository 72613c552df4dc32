//go:build !linux

package audit

import (
	"fmt"
	"os"
)

// sysState is not available here: the journal's checks fall back to the
// file's identity and size.
func sysState(os.FileInfo) (nlink uint64, ctime int64, ok bool) { return 0, 0, false }

// stampOf is not available here: Open always verifies the whole journal.
func stampOf(os.FileInfo) *FileStamp { return nil }

// openNoBlock refuses anything but a regular file before opening it (a
// FIFO would block the open).
func openNoBlock(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	return os.Open(path)
}
