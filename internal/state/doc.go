// Package state is patjanitor's durable memory between runs: the grace-period
// marks, the record of delivered owner digests, the snoozes, the outbox of
// notifications not yet delivered, and for API clients the clients
// patjanitor disabled and their grace marks (buckets of their own, created
// by their first write). Everything lives in one file under the
// state directory (--state-dir) and survives restarts and crashes.
//
// # Why bbolt
//
// The store is go.etcd.io/bbolt: a pure-Go, single-file, copy-on-write B+tree
// with serialisable transactions that fsync on commit, and one writer at a
// time guarded by an flock on the file. Those properties map directly onto what
// the grace workflow needs:
//
//   - Atomic multi-key updates. "The digest was delivered" must, in one step,
//     remove the message from the outbox, record the owner's delivery and start
//     the grace clock on every mark it listed. A crash between those writes would
//     either re-send the digest or, worse, start no clock for a warning the owner
//     did receive (or start one for a warning they did not). JSON files written
//     with rename-into-place are atomic per file only, so several files cannot
//     change together.
//   - Crash safety without a recovery step: a torn write leaves the previous
//     committed tree intact.
//   - A single process owns the state. bbolt's exclusive flock, taken with a
//     timeout, turns a second patjanitor on the same directory into a clear error
//     instead of two writers corrupting each other's view.
//   - Pure Go and small: no cgo, so the static, non-root container image stays
//     simple. SQLite through modernc.org/sqlite is also pure Go, but it is a
//     transpiled C engine of several MB and brings SQL, schema DDL and a
//     connection pool to store a few hundred small records keyed by id.
//
// Values are JSON so that `bbolt` tooling and a human with a backup can read
// them, except the grace marks: a large tenant has tens of thousands, and
// each is a compact record in the protobuf wire format that refers to its
// reason's shape, kept once in the reasons bucket (markcodec.go). Keys are
// plain strings, so iteration order is the key order.
//
// A transaction that finds nothing to change is rolled back, not committed:
// every bbolt commit fdatasyncs the file twice, and a run with nothing new
// to do must not pay that per owner.
//
// # Schema
//
// A "meta" bucket holds the schema version. Open applies the migrations the
// file has not seen yet, all in one transaction, and refuses a file written by a
// newer patjanitor rather than guessing at a layout it does not know.
package state
