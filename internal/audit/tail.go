package audit

import "context"

// Tail takes the records a journal holds after its anchor: records the
// state store never saw. Appending moves the anchor after every record (an
// intent's with its outcome), so normally there are none; there are when
// the store was restored from a backup taken before them (or replaced by an
// older copy) while the journal, append-only, kept them. What the store lost
// with them can be rebuilt from them (package janitor's CatchUp: the saved
// plans executed, the changes the tenant confirmed), and must be before the
// anchor moves past them: after that no open hands them again.
//
// Open and Attach hand over the tail verified and in journal order,
// preceded by the intents the anchor lists as open (their outcomes may be
// in the tail), then call Done. Only the tail is decoded, also when Open
// verifies the whole chain because the file was copied or restored: the
// cost is that of the records the store missed, once. An error from Done
// fails the open with the journal and its anchor left as they were, so the
// next open hands the same records again.
type Tail interface {
	// Record takes one record; it is called only during the open.
	Record(Record)
	// Done is called once after the last record, when there was at least
	// one after the anchor.
	Done(ctx context.Context) error
}

// follow has w hand t, decoded, each record after seq since, after held
// (the intents the anchor lists as open).
func (w *walker) follow(t Tail, held []Record, since int64) {
	for _, r := range held {
		t.Record(r)
	}
	w.since = since
	w.callback = func(r Record) error {
		t.Record(r)
		return nil
	}
}

// handTail hands t the records after the anchor a, which names a record of
// this journal before its end (Attach: the store was swapped for an older
// copy while serve held the journal), and calls Done.
func (j *Journal) handTail(ctx context.Context, a Anchor, t Tail) error {
	w := newWalker(nil)
	if err := j.fromAnchor(w, a); err != nil {
		return err
	}
	held, err := decodeOpen(w.open)
	if err != nil {
		return err
	}
	w.follow(t, held, a.Seq)
	if err := j.walkFrom(w, a.Segment); err != nil {
		return err
	}
	return t.Done(ctx)
}
