package api

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/patjanitor/patjanitor/internal/bytesize"
)

// What a listing may make the client read and keep. The listing is the one
// response whose size the tenant decides; without these limits a hostile or
// broken tenant (or a proxy) decides how much memory patjanitor takes: a
// 300 MB listing took 1.1 GB, a single 100 MB token name 373 MB.
const (
	// DefaultMaxListingBytes bounds the listing bodies of one run when the
	// caller gives no Budget: 64 MiB, about 195,000 tokens at the 342 bytes a
	// token takes in a listing, twice the 100,000 of a large tenant. The
	// shipped memory limits are measured for a run at this size
	// (docs/operations.md, "Memory").
	DefaultMaxListingBytes = 64 << 20
	// MaxFieldBytes bounds every string (and number) in a listing: token ids,
	// names, owner names, scopes, and the members patjanitor does not read. The
	// longest a real token has is a name of a few hundred bytes.
	MaxFieldBytes = 64 << 10
)

// LimitError is a response refused because it is larger than a limit. It is
// not retried: the same request would get the same answer.
type LimitError struct {
	// What was too large, e.g. "the listing".
	What string
	// Limit is the limit in bytes.
	Limit int64
	// Setting names the setting that raises the limit ("" when it is fixed).
	Setting string
	// ContentLength is the body's declared length when that alone exceeded
	// the limit (nothing was read); 0 otherwise.
	ContentLength int64
}

func (e *LimitError) Error() string {
	s := fmt.Sprintf("%s is larger than the limit of %s", e.What, bytesize.Format(e.Limit))
	if e.ContentLength > 0 {
		s += fmt.Sprintf(" (Content-Length %d bytes; nothing was read)", e.ContentLength)
	}
	if e.Setting != "" {
		return s + "; raise " + e.Setting + " if that much is expected"
	}
	return s + " (a fixed limit)"
}

// Budget is a number of listing bytes that several listings may read
// together: the listings of one run share one, so that the run's memory is
// bounded by the budget whether it makes one listing or two. It is safe for
// concurrent use.
type Budget struct {
	limit   int64
	setting string
	left    atomic.Int64
}

// NewBudget returns a budget of limit bytes; setting names the setting that
// raises it, for the error (e.g. "tenant.maxListingBytes").
func NewBudget(limit int64, setting string) *Budget {
	b := &Budget{limit: limit, setting: setting}
	b.left.Store(limit)
	return b
}

// Limit returns the budget's size.
func (b *Budget) Limit() int64 { return b.limit }

func (b *Budget) exceeded(contentLength int64) *LimitError {
	return &LimitError{What: "the listing (counted with the run's other listings)", Limit: b.limit, Setting: b.setting, ContentLength: contentLength}
}

// budgetReader takes what it reads from a Budget and fails, without reading
// further, once the budget is spent. A body of exactly the remaining budget
// is read whole: only a byte beyond it is refused.
type budgetReader struct {
	r    io.Reader
	b    *Budget
	used int64 // taken from the budget by this reader
	err  error
}

func (br *budgetReader) Read(p []byte) (int, error) {
	if br.err != nil {
		return 0, br.err
	}
	// Never ask for more than one byte past what is left, so that the
	// reader cannot pull a large body into p before it is refused.
	if left := br.b.left.Load(); int64(len(p)) > left+1 {
		p = p[:max(left+1, 1)]
	}
	n, err := br.r.Read(p)
	if n > 0 {
		if br.b.left.Add(-int64(n)) < 0 {
			br.b.left.Add(int64(n))
			br.err = br.b.exceeded(0)
			return 0, br.err
		}
		br.used += int64(n)
	}
	return n, err
}

// refund gives back what an attempt read, when its result is thrown away
// (the connection broke and the listing is asked for again).
func (br *budgetReader) refund() {
	br.b.left.Add(br.used)
	br.used = 0
}
