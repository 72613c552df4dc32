package notify

import "github.com/patjanitor/patjanitor/internal/regfile"

// maxFileBytes bounds a template or a CA bundle read from a file: the
// largest public CA bundles are a few hundred KiB, a template far less.
const maxFileBytes = 4 << 20

// readFile reads a template or CA file: only a regular file (or a symbolic
// link to one, as Kubernetes mounts a ConfigMap) of at most maxFileBytes.
// os.ReadFile blocked forever on a FIFO in its place, which in serve hung a
// config reload, and read a device such as /dev/zero until memory ran out.
func readFile(path string) ([]byte, error) {
	return regfile.ReadAll(path, maxFileBytes, false)
}
