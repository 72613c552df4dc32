package plan

// copyGuard notices a change made through a stale copy of Items: one
// copied from another that has been changed since (see Items). The copies
// share a counter of changes, and each remembers the count after its own
// last change: a copy whose count is not the shared one was left behind by
// another's change, and changing it too would write over that copy's rows.
//
// A run-time check rather than go vet's copylocks (a noCopy field): that
// refuses every copy, also the harmless ones the code relies on (a read of
// a copy in Plan.Hash, the moves of a run's items into its plan), while the
// harm is only in a copy changed after another was.
type copyGuard struct {
	changes *uint64 // shared by the copies; nil until the first change
	seen    uint64  // *changes after this copy's last change
}

// changing is called before each change of the Items: it panics when
// another copy was changed since this one was copied (or last changed).
func (g *copyGuard) changing() {
	if g.changes == nil {
		// A zero Items, never changed: a copy of it shares no storage.
		g.changes = new(uint64)
	} else if *g.changes != g.seen {
		panic("plan: Items changed through a copy of Items that another copy has changed since: the copies share storage (see Items)")
	}
	*g.changes++
	g.seen = *g.changes
}
