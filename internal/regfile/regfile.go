// Package regfile opens files that must be regular files (a saved plan, a
// signature file), refusing anything else without blocking on it.
//
// Checking a path with stat and then opening it leaves a gap: a FIFO
// swapped in between makes the open block until a writer comes, which in
// serve, reading files others drop into its approved directory, is forever.
// Open therefore opens first, in a way that cannot block (O_NONBLOCK, which
// does nothing to a regular file), and checks what it opened.
package regfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrNotRegular marks a refusal of what is not a regular file (or, with
// noFollow, is a symbolic link), as opposed to a failure to open the path.
var ErrNotRegular = errors.New("not a regular file")

// Open opens path for reading and returns the file when it is a regular
// file; anything else (a FIFO, a device, a directory, a socket) is refused
// with an error naming the path and what it is. With noFollow, a symbolic
// link is refused too instead of being followed.
func Open(path string, noFollow bool) (*os.File, os.FileInfo, error) {
	f, err := open(path, noFollow)
	if err != nil {
		if noFollow && errors.Is(err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("%s is a symbolic link, %w: refused", path, ErrNotRegular)
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is %s, %w: refused", path, Kind(fi.Mode()), ErrNotRegular)
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// Kind names the type of a file mode for messages ("a FIFO").
func Kind(m os.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file (" + m.Type().String() + ")"
}
