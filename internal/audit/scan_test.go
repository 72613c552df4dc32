package audit

import "io"

// Scan calls fn for each record of a journal, in order, verifying the chain as
// it goes (as Verify does); it stops at the first broken record with a
// *ChainError, and at the first error from fn, which it returns wrapped.
func Scan(r io.Reader, fn func(Record) error) error {
	w := newWalker(fn)
	if err := w.file(r, "", true); err != nil {
		return err
	}
	if w.torn != nil {
		return w.torn
	}
	return nil
}

// PendingIntents returns the intents of a journal that have no outcome (same
// run and token), in journal order: the mutations a crash interrupted. The
// journal is verified on the way; see also (*Journal).Pending.
func PendingIntents(r io.Reader) ([]Record, error) {
	w := newWalker(nil)
	if err := w.file(r, "", true); err != nil {
		return nil, err
	}
	if w.torn != nil {
		return nil, w.torn
	}
	return w.pendingIntents()
}
