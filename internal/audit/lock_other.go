//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package audit

import "os"

// lockFile is a no-op where flock is not available: there, run one patjanitor
// process per journal.
func lockFile(*os.File) error { return nil }
