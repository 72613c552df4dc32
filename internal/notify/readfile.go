package notify

import (
	"fmt"
	"io"

	"github.com/patjanitor/patjanitor/internal/regfile"
)

// maxFileBytes bounds a template or a CA bundle read from a file: the
// largest public CA bundles are a few hundred KiB, a template far less.
const maxFileBytes = 4 << 20

// readFile reads a template or CA file: only a regular file (or a symbolic
// link to one, as Kubernetes mounts a ConfigMap) of at most maxFileBytes.
// os.ReadFile blocked forever on a FIFO in its place, which in serve hung a
// config reload, and read a device such as /dev/zero until memory ran out.
func readFile(path string) ([]byte, error) {
	f, _, err := regfile.Open(path, false)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB, the most this file may be", path, maxFileBytes>>20)
	}
	return b, nil
}
