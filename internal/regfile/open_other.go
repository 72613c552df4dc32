//go:build !unix

package regfile

import (
	"fmt"
	"os"
)

// open refuses anything but a regular file before opening it where the
// system has no non-blocking open: the gap between the check and the open
// remains there.
func open(path string, noFollow bool) (*os.File, error) {
	stat := os.Stat
	if noFollow {
		stat = os.Lstat
	}
	fi, err := stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s, %w: refused", path, Kind(fi.Mode()), ErrNotRegular)
	}
	return os.Open(path)
}
