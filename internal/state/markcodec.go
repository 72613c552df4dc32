package state

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/patjanitor/patjanitor/internal/reasonshape"
)

// Marks are most of the store (one per marked token, tens of thousands in a
// large tenant), so a mark's value is not JSON but a compact record in the
// protobuf wire format (protowire: numbered, length-prefixed fields; unknown
// fields are skipped, so a field can be added without a migration). The
// value leaves out what the key holds (the policy, and the token id unless
// it is spelled in capitals), a deadline that is just WarnedAt + Grace, and
// stores a hex owner id as bytes, the action as a number and times as unix
// milliseconds.
//
// The reason text is most of what is left, and most of it is the policy's
// prose ("lastUsed <time> is before cutoff <time> (unusedFor 90d)"), the
// same for every token of a policy. Since schema 4 the store keeps each
// distinct prose once, as a reason shape in the reasons bucket (the text
// with its times, the token's quoted name and its owner id cut out), and a
// mark keeps the shape's number and its times as milliseconds: the reason
// decodes to exactly the text it was given (reasonshape.AppendCut cuts only what renders back).
// Shapes no mark refers to are removed by the next ReconcileMarks.
//
// The first byte tells the formats apart: markFormat (schema 4),
// markFormat3 (schema 3: the same record with the reason as text and times
// as seconds and nanoseconds), or '{', with which every JSON mark of schema
// 1 and 2 begins. Readers take all three, so a read-only command reads a
// store not yet migrated.
const (
	markFormat  = 0x02
	markFormat3 = 0x01
)

// Field numbers of a mark record. They are part of the on-disk format.
// Numbers below 16 take one byte with their type, so they go to the fields
// every mark has.
const (
	fTokenID       protowire.Number = 1 // only when it differs from the key's (lowered) id
	fName          protowire.Number = 2
	fOwner         protowire.Number = 3 // the owner id as spelled
	fOwnerHex      protowire.Number = 4 // or, for an id of lowercase hex digits, its bytes
	fAction        protowire.Number = 5 // an action without a code (actionCodes)
	fChange        protowire.Number = 6
	fActionCode    protowire.Number = 7 // the action as a number (actionCodes)
	fGraceSec      protowire.Number = 8
	fGraceNsec     protowire.Number = 9
	fReasonShape   protowire.Number = 10 // the number of the reason's shape
	fReasonTimes   protowire.Number = 11 // packed: the shape's times, ms after MarkedAt
	fMarkedMs      protowire.Number = 12 // unix ms
	fMarkedSubMs   protowire.Number = 13 // the nanoseconds within the millisecond, if any
	fWarnedMs      protowire.Number = 14 // ms after MarkedAt
	fWarnedSubMs   protowire.Number = 15
	fDeadlineMs    protowire.Number = 16 // ms after WarnedAt + Grace, only when not 0
	fDeadlineSubMs protowire.Number = 17
	fNoDeadline    protowire.Number = 18 // warned, but no deadline (a mark written by hand)
)

// The fields of schema 3 (markFormat3) that schema 4 numbers differently;
// 1-6, 8 and 9 are the same.
const (
	f3Reason       protowire.Number = 7
	f3MarkedSec    protowire.Number = 10
	f3MarkedNsec   protowire.Number = 11
	f3WarnedSec    protowire.Number = 12
	f3WarnedNsec   protowire.Number = 13
	f3DeadlineSec  protowire.Number = 14 // only when not WarnedAt + Grace
	f3DeadlineNsec protowire.Number = 15
	f3NoDeadline   protowire.Number = 16
)

// actionCodes number the actions a grace policy takes. Part of the format.
var actionCodes = map[string]int64{"delete": 1, "expire": 2, "patch": 3}

func actionOfCode(c int64) string {
	for a, n := range actionCodes {
		if n == c {
			return a
		}
	}
	return ""
}

var errMarkRecord = errors.New("malformed mark record")

// maxUnixSec bounds the seconds of a stored time (about year 36,800).
const maxUnixSec = 1 << 40

// markTable reads and writes the marks of one transaction: the marks bucket
// and the reason shapes they refer to (loaded on first use).
type markTable struct {
	marks   *bolt.Bucket
	reasons *bolt.Bucket // nil in a store of schema 3 (read-only) or in a fuzz test
	// Without marks either, a table of the tests: shapes numbered in memory.
	loaded bool
	shapes map[uint64]reasonshape.Shape
	ids    map[string]uint64 // by the shape's encoding
	next   uint64            // the next number, without a bucket
	// Scratch space of encode, which runs for every mark of a run.
	shapeBuf []byte
	times    []int64
	decTimes []int64 // and of decode
}

func marksOf(tx *bolt.Tx) *markTable {
	b := bucket(tx, bucketMarks)
	if b != nil && tx.Writable() {
		// bbolt splits a full page into pages filled to FillPercent, half
		// by default: with marks written in the random order of token ids,
		// every page would stay about half empty. Marks are rewritten in
		// place far more often than inserted, so the pages are filled.
		b.FillPercent = markFillPercent
	}
	return &markTable{marks: b, reasons: tx.Bucket([]byte(bucketReasons))}
}

// markFillPercent is how full bbolt fills the pages of marks it splits.
const markFillPercent = 0.9

func (t *markTable) load() error {
	if t.loaded {
		return nil
	}
	return t.loadShapes(func(k, _ []byte, err error) error {
		return undecodable(bucketReasons, k, err)
	})
}

// loadShapes reads the reason shapes into the table. A shape that does not
// decode is left out and handed to bad, whose error stops the reading: a
// reader fails closed on it, a repair lists it and reads on (the marks
// that refer to it then fail to decode, and are listed with it).
func (t *markTable) loadShapes(bad func(k, v []byte, err error) error) error {
	t.loaded = true
	t.shapes, t.ids = map[uint64]reasonshape.Shape{}, map[string]uint64{}
	if t.reasons == nil {
		return nil
	}
	return t.reasons.ForEach(func(k, v []byte) error {
		if v == nil {
			// A nested bucket, which reasonshape.Decode would read as
			// an empty shape.
			return bad(k, v, errNestedBucket)
		}
		if len(k) != 8 {
			return bad(k, v, errors.New("the key of a reason shape is 8 bytes"))
		}
		sh, err := reasonshape.Decode(v)
		if err != nil {
			return bad(k, v, err)
		}
		id := binary.BigEndian.Uint64(k)
		t.shapes[id], t.ids[string(v)] = sh, id
		return nil
	})
}

// shapeID returns the number of the shape stored as enc, storing it if it
// is new.
func (t *markTable) shapeID(enc []byte) (uint64, error) {
	if err := t.load(); err != nil {
		return 0, err
	}
	if id, ok := t.ids[string(enc)]; ok {
		return id, nil
	}
	sh, err := reasonshape.Decode(enc)
	if err != nil {
		return 0, err
	}
	enc = bytes.Clone(enc)
	var id uint64
	switch {
	case t.reasons == nil && t.marks != nil:
		// A store without the bucket (schema 3, read-only): a number
		// kept only here would make a mark no reader can decode.
		return 0, errors.New("the store has no reasons bucket: it needs the migration to schema 4")
	case t.reasons != nil:
		var err error
		if id, err = t.reasons.NextSequence(); err != nil {
			return 0, fmt.Errorf("number a reason shape: %w", err)
		}
		if err := t.reasons.Put(binary.BigEndian.AppendUint64(nil, id), enc); err != nil {
			return 0, fmt.Errorf("write reason shape %d: %w", id, err)
		}
	default: // a table without a store (the fuzz tests)
		t.next++
		id = t.next
	}
	t.shapes[id], t.ids[string(enc)] = sh, id
	return id, nil
}

// sweep removes the shapes that no mark in used refers to, and reports
// whether it removed any.
func (t *markTable) sweep(used map[uint64]bool) (bool, error) {
	if err := t.load(); err != nil || t.reasons == nil {
		return false, err
	}
	removed := false
	for id, sh := range t.shapes {
		if used[id] {
			continue
		}
		if err := t.reasons.Delete(binary.BigEndian.AppendUint64(nil, id)); err != nil {
			return false, fmt.Errorf("delete reason shape %d: %w", id, err)
		}
		delete(t.ids, string(sh.Encode()))
		delete(t.shapes, id)
		removed = true
	}
	return removed, nil
}

// get returns the mark stored under key, if any.
func (t *markTable) get(key string) (Mark, bool, error) {
	raw := t.marks.Get([]byte(key))
	if raw == nil {
		return Mark{}, false, nil
	}
	m, err := t.decode([]byte(key), raw)
	if err != nil {
		return Mark{}, false, undecodable(bucketMarks, []byte(key), err)
	}
	return m, true, nil
}

func (t *markTable) put(key string, m Mark) error {
	raw, err := t.encode(key, m)
	if err == nil {
		err = t.marks.Put([]byte(key), raw)
	}
	if err != nil {
		return fmt.Errorf("write mark %q: %w", key, err)
	}
	return nil
}

// encode is the stored value of m under key (see MarkKey.key).
func (t *markTable) encode(key string, m Mark) ([]byte, error) {
	b := make([]byte, 0, 64+len(m.TokenName)+len(m.Change))
	b = append(b, markFormat)
	str := func(n protowire.Number, s string) {
		if s != "" {
			b = protowire.AppendTag(b, n, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	num := func(n protowire.Number, v int64) {
		if v != 0 {
			b = protowire.AppendTag(b, n, protowire.VarintType)
			b = protowire.AppendVarint(b, protowire.EncodeZigZag(v))
		}
	}
	// A time is its unix ms after base (present even when 0, so that a
	// missing field is a missing time), and the nanoseconds within the
	// millisecond when there are any (upsertMark keeps new times to the ms).
	tm := func(ms, sub protowire.Number, t time.Time, base int64) {
		b = protowire.AppendTag(b, ms, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(t.UnixMilli()-base))
		num(sub, int64(t.Nanosecond()%int(time.Millisecond)))
	}
	tok, _, _ := bytes.Cut([]byte(key), []byte{0})
	if m.TokenID != string(tok) {
		str(fTokenID, m.TokenID)
	}
	str(fName, m.TokenName)
	if raw, ok := packedHex(m.OwnerID); ok {
		b = protowire.AppendTag(b, fOwnerHex, protowire.BytesType)
		b = protowire.AppendBytes(b, raw)
	} else {
		str(fOwner, m.OwnerID)
	}
	if c, ok := actionCodes[m.Action]; ok {
		num(fActionCode, c)
	} else {
		str(fAction, m.Action)
	}
	str(fChange, m.Change)
	num(fGraceSec, int64(m.Grace/time.Second))
	num(fGraceNsec, int64(m.Grace%time.Second))
	var base int64 // the ms of MarkedAt: the other times are close to it
	if !m.MarkedAt.IsZero() {
		tm(fMarkedMs, fMarkedSubMs, m.MarkedAt, 0)
		base = m.MarkedAt.UnixMilli()
	}
	if m.Reason != "" {
		t.shapeBuf, t.times = reasonshape.AppendCut(t.shapeBuf[:0], t.times[:0], m.Reason, m.TokenName, m.OwnerID)
		id, err := t.shapeID(t.shapeBuf)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, fReasonShape, protowire.VarintType)
		b = protowire.AppendVarint(b, id)
		if len(t.times) > 0 {
			n := 0
			for _, v := range t.times {
				n += protowire.SizeVarint(protowire.EncodeZigZag(v - base))
			}
			b = protowire.AppendTag(b, fReasonTimes, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(n))
			for _, v := range t.times {
				b = protowire.AppendVarint(b, protowire.EncodeZigZag(v-base))
			}
		}
	}
	if m.WarnedAt != nil {
		tm(fWarnedMs, fWarnedSubMs, *m.WarnedAt, base)
		switch due := m.WarnedAt.Add(m.Grace); {
		case m.Deadline == nil:
			num(fNoDeadline, 1)
		case !m.Deadline.Equal(due):
			tm(fDeadlineMs, fDeadlineSubMs, *m.Deadline, due.UnixMilli())
		}
	} else if m.Deadline != nil {
		// Not written by this package (the clock fields go together), but
		// kept as read rather than lost.
		tm(fDeadlineMs, fDeadlineSubMs, *m.Deadline, base)
	}
	return b, nil
}

// packedHex returns the bytes of s if s is lowercase hex of even length (the
// ids of a tenant), so that they take half the space.
func packedHex(s string) ([]byte, bool) {
	if s == "" || len(s)%2 != 0 {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, false
		}
	}
	raw, err := hex.DecodeString(s)
	return raw, err == nil
}

// markFields are the fields of a record as read, before they make a Mark.
type markFields struct {
	m                   Mark
	graceSec, graceNsec int64
	shape               uint64
	hasShape            bool
	times               []int64
	// A time as ms and ns within the ms (schema 4), or as seconds and
	// nanoseconds (schema 3).
	marked, warned, deadline    [2]int64
	hasMarked, hasWarned, hasDL bool
	noDeadline                  bool
}

// decode reads a mark stored under key in any of the formats.
func (t *markTable) decode(key, raw []byte) (Mark, error) {
	tok, pol, ok := bytes.Cut(key, []byte{0})
	if !ok {
		return Mark{}, fmt.Errorf("mark key %q: no policy", key)
	}
	if len(raw) == 0 {
		return Mark{}, errMarkRecord
	}
	m, err := t.decodeValue(tok, pol, raw)
	if err == nil && bytes.HasPrefix(tok, []byte(hashedKeyPrefix)) && markKey(m.TokenID, string(pol)) != string(key) {
		// A hashed key's record must name the token it hashes: without
		// the id field it would read as a mark of a token named like the
		// hash, which a tenant may list.
		return Mark{}, fmt.Errorf("%w: token id %.40q does not hash to the key", errMarkRecord, m.TokenID)
	}
	return m, err
}

func (t *markTable) decodeValue(tok, pol, raw []byte) (Mark, error) {
	switch raw[0] {
	case markFormat, markFormat3:
	default:
		var m Mark
		if err := json.Unmarshal(raw, &m); err != nil {
			return Mark{}, err
		}
		return m, nil
	}
	f := markFields{m: Mark{TokenID: string(tok), Policy: string(pol)}, times: t.decTimes[:0]}
	defer func() { t.decTimes = f.times[:0] }()
	if err := f.read(raw[0], raw[1:]); err != nil {
		return Mark{}, err
	}
	if raw[0] == markFormat3 {
		return f.mark3()
	}
	return f.mark(t)
}

func (f *markFields) read(format byte, b []byte) error {
	m := &f.m
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("%w: %w", errMarkRecord, protowire.ParseError(l))
		}
		b = b[l:]
		if want, known := fieldType(format, n); known && typ != want {
			// Read as the zero of its type, the field would be a wrong
			// value, such as a warning time that was never set.
			return fmt.Errorf("%w: field %d has wire type %d, not %d", errMarkRecord, n, typ, want)
		}
		var u uint64
		var s []byte
		switch typ {
		case protowire.VarintType:
			u, l = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			s, l = protowire.ConsumeBytes(b)
		default:
			l = protowire.ConsumeFieldValue(n, typ, b)
		}
		if l < 0 {
			return fmt.Errorf("%w: field %d: %w", errMarkRecord, n, protowire.ParseError(l))
		}
		b = b[l:]
		v := protowire.DecodeZigZag(u)
		switch n {
		case fTokenID:
			m.TokenID = string(s)
			continue
		case fName:
			m.TokenName = string(s)
			continue
		case fOwner:
			m.OwnerID = string(s)
			continue
		case fOwnerHex:
			m.OwnerID = hex.EncodeToString(s)
			continue
		case fAction:
			m.Action = string(s)
			continue
		case fChange:
			m.Change = string(s)
			continue
		case fGraceSec:
			f.graceSec = v
			continue
		case fGraceNsec:
			f.graceNsec = v
			continue
		}
		if format == markFormat3 {
			switch n {
			case f3Reason:
				m.Reason = string(s)
			case f3MarkedSec:
				f.marked[0], f.hasMarked = v, true
			case f3MarkedNsec:
				f.marked[1] = v
			case f3WarnedSec:
				f.warned[0], f.hasWarned = v, true
			case f3WarnedNsec:
				f.warned[1] = v
			case f3DeadlineSec:
				f.deadline[0], f.hasDL = v, true
			case f3DeadlineNsec:
				f.deadline[1] = v
			case f3NoDeadline:
				f.noDeadline = v != 0
			}
			continue
		}
		switch n {
		case fActionCode:
			if m.Action = actionOfCode(v); m.Action == "" {
				return fmt.Errorf("%w: unknown action code %d", errMarkRecord, v)
			}
		case fReasonShape:
			f.shape, f.hasShape = u, true
		case fReasonTimes:
			f.times = f.times[:0]
			for len(s) > 0 {
				x, l := protowire.ConsumeVarint(s)
				if l < 0 {
					return fmt.Errorf("%w: reason times: %w", errMarkRecord, protowire.ParseError(l))
				}
				f.times, s = append(f.times, protowire.DecodeZigZag(x)), s[l:]
			}
		case fMarkedMs:
			f.marked[0], f.hasMarked = v, true
		case fMarkedSubMs:
			f.marked[1] = v
		case fWarnedMs:
			f.warned[0], f.hasWarned = v, true
		case fWarnedSubMs:
			f.warned[1] = v
		case fDeadlineMs:
			f.deadline[0], f.hasDL = v, true
		case fDeadlineSubMs:
			f.deadline[1] = v
		case fNoDeadline:
			f.noDeadline = v != 0
		}
	}
	return nil
}

// fieldType returns the wire type of field n in a record of the format, or
// false for a number the format does not define (skipped when read).
func fieldType(format byte, n protowire.Number) (protowire.Type, bool) {
	last, bytesField := fNoDeadline, fReasonTimes
	if format == markFormat3 {
		last, bytesField = f3NoDeadline, f3Reason
	}
	switch {
	case n < fTokenID || n > last:
		return 0, false
	case n <= fChange || n == bytesField:
		return protowire.BytesType, true
	}
	return protowire.VarintType, true
}

// maxUnixMs bounds the milliseconds of a stored time, as maxUnixSec.
const maxUnixMs = maxUnixSec * 1000

// maxGraceSec bounds a grace period where a time.Duration still holds it
// (about 292 years): the whole range, since policies.yaml takes every
// duration up to it, and a grace the config accepts but the store cannot
// read back would make every later run fail on its marks.
const maxGraceSec = math.MaxInt64 / int64(time.Second)

func (f *markFields) grace() (time.Duration, error) {
	if f.graceSec < 0 || f.graceSec > maxGraceSec || f.graceNsec < 0 || f.graceNsec >= int64(time.Second) ||
		(f.graceSec == maxGraceSec && f.graceNsec > math.MaxInt64%int64(time.Second)) {
		return 0, fmt.Errorf("%w: grace %d s + %d ns out of range", errMarkRecord, f.graceSec, f.graceNsec)
	}
	return time.Duration(f.graceSec)*time.Second + time.Duration(f.graceNsec), nil
}

// mark makes the Mark of a record of schema 4.
func (f *markFields) mark(t *markTable) (Mark, error) {
	m := f.m
	var err error
	if m.Grace, err = f.grace(); err != nil {
		return Mark{}, err
	}
	// A time is ms after another time (base); the time it makes must be
	// in range, as the times of schema 3 are.
	milli := func(mt [2]int64, base int64) (time.Time, error) {
		if mt[0] < -4*maxUnixMs || mt[0] > 4*maxUnixMs || mt[1] < 0 || mt[1] >= int64(time.Millisecond) ||
			base+mt[0] < -maxUnixMs || base+mt[0] > maxUnixMs {
			return time.Time{}, fmt.Errorf("%w: time %d ms after %d ms (+%d ns) out of range", errMarkRecord, mt[0], base, mt[1])
		}
		return time.UnixMilli(base + mt[0]).Add(time.Duration(mt[1])).UTC(), nil
	}
	var base int64
	if f.hasMarked {
		if m.MarkedAt, err = milli(f.marked, 0); err != nil {
			return Mark{}, err
		}
		base = m.MarkedAt.UnixMilli()
	}
	if f.hasShape {
		if err := t.load(); err != nil {
			return Mark{}, err
		}
		sh, ok := t.shapes[f.shape]
		if !ok {
			return Mark{}, fmt.Errorf("%w: reason shape %d is not in the store", errMarkRecord, f.shape)
		}
		for i, v := range f.times {
			tm, err := milli([2]int64{v, 0}, base)
			if err != nil {
				return Mark{}, fmt.Errorf("reason: %w", err)
			}
			f.times[i] = tm.UnixMilli()
		}
		if m.Reason, err = sh.Render(f.times, m.TokenName, m.OwnerID); err != nil {
			return Mark{}, fmt.Errorf("%w: reason shape %d: %w", errMarkRecord, f.shape, err)
		}
	}
	switch {
	case f.hasWarned:
		w, err := milli(f.warned, base)
		if err != nil {
			return Mark{}, err
		}
		m.WarnedAt = &w
		if f.noDeadline {
			break
		}
		due := w.Add(m.Grace)
		if f.hasDL {
			if due, err = milli(f.deadline, due.UnixMilli()); err != nil {
				return Mark{}, err
			}
		}
		m.Deadline = &due
	case f.hasDL:
		d, err := milli(f.deadline, base)
		if err != nil {
			return Mark{}, err
		}
		m.Deadline = &d
	}
	return m, nil
}

// mark3 makes the Mark of a record of schema 3.
func (f *markFields) mark3() (Mark, error) {
	m := f.m
	for _, st := range [][2]int64{f.marked, f.warned, f.deadline} {
		// Beyond any real date, and where time.Unix would overflow.
		if st[0] < -maxUnixSec || st[0] > maxUnixSec || st[1] < 0 || st[1] >= 1e9 {
			return Mark{}, fmt.Errorf("%w: time %d.%09d out of range", errMarkRecord, st[0], st[1])
		}
	}
	var err error
	if m.Grace, err = f.grace(); err != nil {
		return Mark{}, err
	}
	unix := func(st [2]int64) time.Time { return time.Unix(st[0], st[1]).UTC() }
	if f.hasMarked {
		m.MarkedAt = unix(f.marked)
	}
	if f.hasWarned {
		w := unix(f.warned)
		m.WarnedAt = &w
		if !f.noDeadline {
			d := w.Add(m.Grace)
			m.Deadline = &d
		}
	}
	if f.hasDL {
		d := unix(f.deadline)
		m.Deadline = &d
	}
	return m, nil
}

// shapeRef returns the reason shape a stored mark refers to, if any, without
// decoding the rest.
func shapeRef(raw []byte) (uint64, bool) {
	if len(raw) == 0 || raw[0] != markFormat {
		return 0, false
	}
	b := raw[1:]
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return 0, false
		}
		b = b[l:]
		if n == fReasonShape && typ == protowire.VarintType {
			v, l := protowire.ConsumeVarint(b)
			return v, l >= 0
		}
		if l = protowire.ConsumeFieldValue(n, typ, b); l < 0 {
			return 0, false
		}
		b = b[l:]
	}
	return 0, false
}

// rewriteMarks re-encodes every mark that is not stored as this version
// writes it (migrations to schema 3 and 4).
func rewriteMarks(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists([]byte(bucketReasons)); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketReasons, err)
	}
	t := marksOf(tx)
	type entry struct{ k, v []byte }
	var changed []entry
	err := t.marks.ForEach(func(k, v []byte) error {
		m, err := t.decode(k, v)
		if err != nil {
			return fmt.Errorf("mark %q: %w", k, err)
		}
		enc, err := t.encode(string(k), m)
		if err != nil {
			return fmt.Errorf("mark %q: %w", k, err)
		}
		if !bytes.Equal(enc, v) {
			changed = append(changed, entry{bytes.Clone(k), enc})
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Writing while iterating with ForEach is not allowed in bbolt.
	for _, e := range changed {
		if err := t.marks.Put(e.k, e.v); err != nil {
			return fmt.Errorf("write mark %q: %w", e.k, err)
		}
	}
	return nil
}
