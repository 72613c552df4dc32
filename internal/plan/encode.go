package plan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// The document is encoded by hand, straight into its destination (the hash
// for Seal, a file or stdout for Write), one item at a time. A plan of a
// large tenant has tens of thousands of items: encoding/json first built the
// whole compact document in memory, and json.Indent then a second, larger
// copy of it, so that sealing and writing a 100,000-token plan held several
// copies of 60–90 MB and spent most of the plan command's time there.
//
// The output is byte for byte what encoding/json gives for the document
// shape (see reference_test.go): keys in the order of the struct
// definitions, its string escaping (HTML characters, U+2028/U+2029 and
// invalid UTF-8 included), and for Write the layout of json.Indent with a
// two-space indent. Rare values (patch values other than strings, booleans,
// string lists and null; guardrail limits) go through encoding/json itself.
//
// It stays hand-written because it is more than twice as fast as the best
// library form (the bar for keeping a hand-written codec). Seal and Write of
// the plan the engine makes for a 100,000-token tenant from the shipped
// policies.yaml (61,816 items, 6,574 skipped, 44 MB; BenchmarkEncodeForms,
// forms alternated in one run, load average 5-7 on 2 vCPUs, wall / CPU time):
//
//	this encoder (parallel blocks, prefetch)          89-108 ms /  86-95 ms
//	  the same, one goroutine, no prefetch           118-152 ms (best runs)
//	jsontext.Encoder token by token, twice          311-412 ms / 263-281 ms
//	json/v2 Marshal once, kept, jsontext.AppendFormat 615-677 ms / 292-336 ms
//	encoding/json Marshal once, kept, json.Indent   706-716 ms / 400-404 ms
//
// The parallel blocks stay for the same reason: on the busy machine,
// 89-150 ms (median 121) against 152-408 (272) on one goroutine. Since the
// items are held compactly (compact.go), the encoder writes each one from
// its row (encoder.row), and the prefetch that overlapped the cache misses
// of strings scattered over the heap is gone: a row's strings are a few
// interned ones. The same benchmark then (load average 3.5): 46-49 ms wall,
// 83-88 ms CPU, against 240 ms for jsontext token by token.
//
// Each item is encoded twice, once compact into the hash (Seal, in the
// engine) and once indented into the file (Write, later): the hash is in the
// document's header, before the items, so encoding each item once for both
// would mean keeping the compact encodings from Seal to Write (31.5 MB for
// those 61,816 items, most of the 50 MB the whole plan may take), and
// re-indenting them costs more than encoding again (the
// "once, kept" forms above, and json.Indent over this encoder's compact
// items: 315-321 ms).

// flushAt is how full the encoder's buffer gets before it is handed to the
// destination: large enough that a hash or a bufio.Writer sees few calls,
// small enough not to matter for memory.
const flushAt = 32 << 10

// encoder writes JSON to w, compact or in json.Indent's layout with a
// two-space indent. It tracks the nesting itself: depth is the number of open
// containers, first whether the innermost one has no element yet.
type encoder struct {
	w      io.Writer
	buf    []byte
	indent bool
	depth  int
	first  bool
	err    error
	// Scratch space of row, for a reason and its times.
	scratch []byte
	times   []int64
}

func newEncoder(w io.Writer, indent bool) *encoder {
	return &encoder{w: w, buf: make([]byte, 0, flushAt+4096), indent: indent}
}

// flush hands the buffer to the destination; the first write error sticks.
func (e *encoder) flush() error {
	if e.err == nil && len(e.buf) > 0 {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
	return e.err
}

func (e *encoder) maybeFlush() {
	if len(e.buf) >= flushAt {
		_ = e.flush()
	}
}

// newline starts an indented line at the current depth (nothing when compact).
func (e *encoder) newline() {
	if !e.indent {
		return
	}
	if n := 2 * e.depth; n < len(spaces) {
		e.buf = append(e.buf, '\n')
		e.buf = append(e.buf, spaces[:n]...)
		return
	}
	e.buf = append(e.buf, '\n')
	for range e.depth {
		e.buf = append(e.buf, ' ', ' ')
	}
}

// spaces is the indentation of the usual depths, appended in one go.
const spaces = "                                "

// elem starts the next element of the innermost container.
func (e *encoder) elem() {
	if !e.first {
		e.buf = append(e.buf, ',')
	}
	e.first = false
	e.newline()
}

// key starts the next member of the innermost object. Keys are this
// package's own constants and need no escaping.
func (e *encoder) key(k string) {
	e.elem()
	e.buf = append(e.buf, '"')
	e.buf = append(e.buf, k...)
	e.buf = append(e.buf, '"', ':')
	if e.indent {
		e.buf = append(e.buf, ' ')
	}
}

func (e *encoder) open(c byte) {
	e.buf = append(e.buf, c)
	e.depth++
	e.first = true
}

// close ends the innermost container; an empty one stays on its line ({} or
// [], as json.Indent writes it).
func (e *encoder) close(c byte) {
	e.depth--
	if !e.first {
		e.newline()
	}
	e.buf = append(e.buf, c)
	e.first = false
}

func (e *encoder) str(s string) { e.buf = appendString(e.buf, s) }

func (e *encoder) int(n int) { e.buf = strconv.AppendInt(e.buf, int64(n), 10) }

func (e *encoder) bool(b bool) {
	if b {
		e.buf = append(e.buf, "true"...)
	} else {
		e.buf = append(e.buf, "false"...)
	}
}

func (e *encoder) null() { e.buf = append(e.buf, "null"...) }

// time writes t in pat.TimeLayout, as pat.FormatTime does (UTC, the
// fraction truncated to milliseconds). Years of four digits are formatted
// here (time.AppendFormat interprets its layout on every call); others go
// through the time package.
func (e *encoder) time(t time.Time) {
	t = t.UTC()
	e.buf = append(e.buf, '"')
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		e.buf = t.AppendFormat(e.buf, pat.TimeLayout)
		e.buf = append(e.buf, '"')
		return
	}
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	e.buf = append(e.buf,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+s/10), byte('0'+s%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
}

func (e *encoder) timePtr(t *time.Time) {
	if t == nil {
		e.null()
		return
	}
	e.time(*t)
}

func (e *encoder) strings(ss []string) {
	e.open('[')
	for _, s := range ss {
		e.elem()
		e.str(s)
	}
	e.close(']')
}

// marshaled writes v as encoding/json does, indented to the current depth.
func (e *encoder) marshaled(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !e.indent {
		e.buf = append(e.buf, b...)
		return nil
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, b, strings.Repeat("  ", e.depth), "  "); err != nil {
		return err
	}
	e.buf = append(e.buf, ind.Bytes()...)
	return nil
}

// plan writes the whole document and flushes it.
func (e *encoder) plan(p *Plan) error {
	e.open('{')
	e.key("version")
	e.int(p.Version)
	e.key("tenant")
	e.str(p.Tenant)
	e.key("apiVersion")
	e.str(p.APIVersion)
	e.key("generatedAt")
	e.time(p.GeneratedAt)
	if p.RunID != "" {
		e.key("runId")
		e.str(p.RunID)
	}
	e.key("configDigest")
	e.str(p.ConfigDigest)
	e.key("planHash")
	e.str(p.PlanHash)
	e.key("population")
	e.int(p.Population)
	if err := e.view(p); err != nil {
		return err
	}
	e.key("listings")
	e.open('[')
	for i := range p.Listings {
		l := &p.Listings[i]
		e.elem()
		e.open('{')
		e.key("filter")
		e.str(l.Filter)
		e.key("count")
		e.int(l.Count)
		if l.Error != "" {
			e.key("error")
			e.str(l.Error)
		}
		e.close('}')
	}
	e.close(']')
	if p.Error != "" {
		e.key("error")
		e.str(p.Error)
	}
	if p.Policies != nil {
		e.key("policies")
		e.open('[')
		for i := range p.Policies {
			pp := &p.Policies[i]
			e.elem()
			e.open('{')
			e.key("name")
			e.str(pp.Name)
			e.key("mode")
			e.str(pp.Mode)
			e.key("action")
			e.str(pp.Action)
			e.close('}')
		}
		e.close(']')
	}
	e.key("items")
	e.open('[')
	e.items(&p.Items)
	e.close(']')
	e.key("skipped")
	e.open('[')
	for i := range p.Skipped {
		s := &p.Skipped[i]
		e.elem()
		e.open('{')
		e.key("tokenId")
		e.str(s.TokenID)
		e.key("tokenName")
		e.str(s.TokenName)
		e.key("ownerId")
		e.str(s.OwnerID)
		e.key("policy")
		e.str(s.Policy)
		e.key("reason")
		e.str(s.Reason)
		e.close('}')
		e.maybeFlush()
	}
	e.close(']')
	e.key("guardrails")
	e.open('[')
	for i := range p.Guardrails {
		g := &p.Guardrails[i]
		e.elem()
		e.open('{')
		e.key("name")
		e.str(g.Name)
		e.key("limit")
		// encoding/json's float format (and its refusal of NaN and
		// infinities), for the few guardrails of a plan.
		if err := e.marshaled(g.Limit); err != nil {
			return fmt.Errorf("guardrail %s: limit: %w", g.Name, err)
		}
		e.key("wanted")
		e.int(g.Wanted)
		e.key("tripped")
		e.bool(g.Tripped)
		if g.Detail != "" {
			e.key("detail")
			e.str(g.Detail)
		}
		e.close('}')
	}
	e.close(']')
	if err := e.clients(p.APIClients); err != nil {
		return fmt.Errorf("apiClients: %w", err)
	}
	e.close('}')
	if e.indent {
		e.buf = append(e.buf, '\n')
	}
	return e.flush()
}

// Items are encoded in blocks of blockItems, in parallel when the plan has
// more than one block and the process more than one CPU: encoding is most of
// the cost of sealing and of writing a large plan, and the blocks are
// independent. The destination still receives the bytes in order, and at
// most a few blocks are in flight at a time: with two workers about seven
// blocks and six recycled buffers, about 90 KB each at 128 items. Blocks of
// 512 items kept about 4 MB of buffers live while a 100,000-token plan was
// encoded, on top of its items, which raised its peak RSS by 2-3 MB; the
// smaller blocks cost no measurable CPU.
const blockItems = 128

// items writes the elements of the items array (the brackets are the
// caller's), each from the compact form (row). A write error sticks in
// e.err.
func (e *encoder) items(items *Items) {
	n := items.Len()
	workers := min(runtime.GOMAXPROCS(0), (n+blockItems-1)/blockItems)
	if workers < 2 {
		for i := range n {
			e.elem()
			e.row(&items.c, i)
			e.maybeFlush()
		}
		return
	}
	type job struct {
		lo, hi int
		out    chan []byte
	}
	jobs := make(chan job)
	pending := make(chan chan []byte, 2*workers) // in order, bounds the blocks in flight
	free := make(chan []byte, 3*workers)         // recycled block buffers
	// The largest block so far: a new buffer is made a little larger than
	// it rather than grown by doubling (blocks are of similar sizes).
	var largest atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				var buf []byte
				select {
				case buf = <-free:
				default:
					if n := largest.Load(); n > 0 {
						buf = make([]byte, 0, n+n/8)
					}
				}
				// Each block starts as if after an element (first=false):
				// the comma of its first item is dropped below for block 0.
				b := encoder{buf: buf[:0], indent: e.indent, depth: e.depth}
				for i := j.lo; i < j.hi; i++ {
					b.elem()
					b.row(&items.c, i)
				}
				if n := int64(len(b.buf)); n > largest.Load() {
					largest.Store(n) // a race between workers only costs a regrowth
				}
				j.out <- b.buf
			}
		})
	}
	go func() {
		for lo := 0; lo < n; lo += blockItems {
			out := make(chan []byte, 1)
			pending <- out
			jobs <- job{lo: lo, hi: min(lo+blockItems, n), out: out}
		}
		close(jobs)
		close(pending)
	}()
	block := 0
	for out := range pending {
		buf := <-out
		b := buf
		if block == 0 && e.first {
			b = b[1:] // no comma before the array's first element
		}
		// Hand the block over as it is rather than copy it into the
		// buffer first.
		if e.flush() == nil {
			_, e.err = e.w.Write(b)
		}
		block++
		select {
		case free <- buf:
		default:
		}
	}
	wg.Wait()
	e.first = false
}

// item writes one item (into the buffer only: it does not flush, so that
// Item.MarshalJSON can use an encoder without a destination).
func (e *encoder) item(it *Item) error {
	e.open('{')
	e.key("tokenId")
	e.str(it.TokenID)
	e.key("tokenName")
	e.str(it.TokenName)
	e.key("ownerId")
	e.str(it.OwnerID)
	e.key("ownerName")
	e.str(it.OwnerName)
	e.key("created")
	e.time(it.Created)
	e.key("lastUsed")
	e.timePtr(it.LastUsed)
	if it.ExpirationDate != nil {
		e.key("expirationDate")
		e.time(*it.ExpirationDate)
	}
	e.key("scope")
	if it.Scope.Null {
		e.null()
	} else {
		e.strings(it.Scope.Values)
	}
	e.key("managed")
	e.bool(it.Managed)
	e.key("policy")
	e.str(it.Policy)
	e.key("mode")
	e.str(it.Mode)
	e.key("action")
	e.str(it.Action)
	e.key("reason")
	e.str(it.Reason)
	e.key("patch")
	e.open('[')
	for _, op := range it.Patch {
		e.patchOp(op)
	}
	e.close(']')
	e.key("alsoMatched")
	e.strings(it.AlsoMatched)
	if it.Marked != nil {
		e.key("marked")
		e.time(*it.Marked)
	}
	if it.Deadline != nil {
		e.key("deadline")
		e.time(*it.Deadline)
	}
	e.close('}')
	return nil
}

// row writes item i of c as item writes it, from the compact form: the
// ids spelled out, the reason rendered, the interned strings as they are,
// all into the buffer without making an Item.
func (e *encoder) row(c *compactItems, i int) {
	r := c.row(i)
	d := &c.decisions[r.decision]
	e.open('{')
	e.key("tokenId")
	e.id(c, &r.tokenID, r.flags>>flagTokenID&3)
	e.key("tokenName")
	e.str(c.strs.s[r.tokenName])
	e.key("ownerId")
	ownerAt := len(e.buf) + 1
	e.id(c, &r.ownerID, r.flags>>flagOwnerID&3)
	ownerEnd := len(e.buf) - 1
	e.key("ownerName")
	e.str(c.strs.s[r.ownerName])
	e.key("created")
	e.time(c.time(r.created))
	e.key("lastUsed")
	if r.lastUsed == timeNil {
		e.null()
	} else {
		e.time(c.time(r.lastUsed))
	}
	if r.expires != timeNil {
		e.key("expirationDate")
		e.time(c.time(r.expires))
	}
	e.key("scope")
	if sc := &c.scopes[r.scope]; sc.Null {
		e.null()
	} else {
		e.strings(sc.Values)
	}
	e.key("managed")
	e.bool(r.flags&flagManaged != 0)
	e.key("policy")
	e.str(c.strs.s[d.policy])
	e.key("mode")
	e.str(c.strs.s[d.mode])
	e.key("action")
	e.str(c.strs.s[d.action])
	e.key("reason")
	owner := ""
	if c.shapes[r.shape].owner && r.flags>>flagOwnerID&3 != idText {
		// The owner id as just written (hexadecimal digits need no
		// escaping); text ids are the arena's own strings.
		owner = string(e.buf[ownerAt:ownerEnd])
	}
	e.scratch, e.times = c.appendReason(e.scratch[:0], r, e.times, owner)
	// The scratch buffer is not written while the string is in use.
	e.str(unsafe.String(unsafe.SliceData(e.scratch), len(e.scratch)))
	e.key("patch")
	e.open('[')
	for _, op := range d.patch {
		e.patchOp(op)
	}
	e.close(']')
	e.key("alsoMatched")
	e.strings(d.alsoMatched)
	marked, deadline := c.grace(r)
	if marked != timeNil {
		e.key("marked")
		e.time(c.time(marked))
	}
	if deadline != timeNil {
		e.key("deadline")
		e.time(c.time(deadline))
	}
	e.close('}')
}

// id writes an id of a row.
func (e *encoder) id(c *compactItems, w *idWord, form uint32) {
	if form == idText {
		e.str(c.bytes.str(binary.LittleEndian.Uint64(w[:8])))
		return
	}
	e.buf = append(e.buf, '"')
	e.buf = c.appendID(e.buf, w, form)
	e.buf = append(e.buf, '"')
}

// patchOp writes one operation as pat.PatchOp marshals it, in the
// document's layout.
func (e *encoder) patchOp(op pat.PatchOp) {
	e.elem()
	e.open('{')
	e.key("op")
	e.str(op.Op())
	e.key("path")
	e.str(op.Path())
	e.key("value")
	if s, ok := op.Scopes(); ok && s != nil {
		e.strings(s)
	} else {
		e.buf = append(e.buf, op.Value()...)
	}
	e.close('}')
}

// safeASCII marks ('1') the bytes appendString copies as they are: printable
// ASCII other than ", \, <, > and &. It is a constant string rather than a
// table variable so that it cannot be changed.
const safeASCII = "0000000000000000000000000000000011011101111111111111111111110101111111111111111111111111111101111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

// needsEscape reports whether any of the eight bytes in x is one that
// safeASCII does not mark: a control character, ", \, <, >, & or a byte of
// a multi-byte sequence (bit 7). It may not say which; appendString then
// looks byte by byte.
func needsEscape(x uint64) bool {
	const (
		lo  = 0x0101010101010101
		hi  = 0x8080808080808080
		ctl = 0x2020202020202020 // bytes below 0x20
	)
	q, bs, lt, gt, amp := x^('"'*lo), x^('\\'*lo), x^('<'*lo), x^('>'*lo), x^('&'*lo)
	t := x | (x-ctl)&^x |
		(q-lo)&^q | (bs-lo)&^bs | (lt-lo)&^lt | (gt-lo)&^gt | (amp-lo)&^amp
	return t&hi != 0
}

// appendString appends s as a JSON string escaped exactly as encoding/json
// escapes it by default: ", \ and control characters, the HTML characters
// <, > and & as \u003c, \u003e, \u0026, U+2028 and U+2029, and each byte of
// invalid UTF-8 as \ufffd.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs attention (see
		// needsEscape), then byte by byte.
		for i+8 <= len(s) {
			w := s[i : i+8]
			x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
			if needsEscape(x) {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		b := s[i]
		if safeASCII[b] == '1' {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// view writes the optional keys that describe what the run could see (each
// omitted when empty, so that plans made without them keep their encoding).
func (e *encoder) view(p *Plan) error {
	if p.Caller != nil {
		c := *p.Caller
		c.Authorities = nonNil(c.Authorities)
		e.key("caller")
		if err := e.marshaled(c); err != nil {
			return fmt.Errorf("caller: %w", err)
		}
	}
	if p.Owners != 0 {
		e.key("owners")
		e.int(p.Owners)
	}
	if p.CredentialExpires != nil {
		e.key("credentialExpires")
		e.time(*p.CredentialExpires)
	}
	if p.PartialView != "" {
		e.key("partialView")
		e.str(p.PartialView)
	}
	if len(p.Warnings) > 0 {
		e.key("warnings")
		e.strings(p.Warnings)
	}
	return nil
}
