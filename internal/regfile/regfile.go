// Package regfile opens and reads files that must be regular files (a
// saved plan, a signature file, a config, a secret), refusing anything else
// without blocking on it, and reads them only up to a size limit.
//
// Checking a path with stat and then opening it leaves a gap: a FIFO
// swapped in between makes the open block until a writer comes, which in
// serve, reading files others drop into its approved directory, is forever.
// Open therefore opens first, in a way that cannot block (O_NONBLOCK, which
// does nothing to a regular file), and checks what it opened.
package regfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/patjanitor/patjanitor/internal/bytesize"
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

// ErrTooLarge matches the refusal of a file larger than its reader's limit.
var ErrTooLarge = errors.New("file larger than its limit")

// tooLargeError names the file and the limit; it matches ErrTooLarge.
type tooLargeError struct {
	path  string
	limit int64
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than %s, the most this file may be", e.path, bytesize.Format(e.limit))
}

func (e *tooLargeError) Is(target error) bool { return target == ErrTooLarge }

// ReadAll reads the regular file at path whole when it holds at most limit
// bytes. What Open refuses is refused (with noFollow, a symbolic link
// too), and a larger file with an error naming it and the limit (matching
// ErrTooLarge), having read no more than limit+1 bytes of it: a wrong path
// (a log file, a disk image) is not read into memory, and the limit holds
// for a file that grows while it is read. A path that does not exist gives
// an error matching fs.ErrNotExist.
func ReadAll(path string, limit int64, noFollow bool) ([]byte, error) {
	f, fi, err := Open(path, noFollow)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if fi.Size() > limit {
		return nil, &tooLargeError{path, limit}
	}
	// Sized by the file, as os.ReadFile does: one allocation for a file
	// that does not grow while it is read.
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	data := buf.Bytes()
	if int64(len(data)) > limit {
		return nil, &tooLargeError{path, limit}
	}
	return data, nil
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
