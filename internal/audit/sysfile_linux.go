//go:build linux

package audit

import (
	"os"
	"syscall"
)

// sysState returns the link count, the change time (ns) and the identity of
// a file. The change time moves with every write and metadata change and
// cannot be set by a user: a journal whose change time is not the one after
// patjanitor's own last write was touched by someone else, even at the same
// size.
func sysState(fi os.FileInfo) (nlink uint64, ctime int64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Nlink), st.Ctim.Nano(), true
}

// stampOf returns a file's stamp (nil where the system does not tell).
func stampOf(fi os.FileInfo) *FileStamp {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return &FileStamp{Dev: uint64(st.Dev), Ino: st.Ino, Ctime: st.Ctim.Nano(), Size: fi.Size()}
}
