package state

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
)

// Marks are most of the store (one per marked token, tens of thousands in a
// large tenant), so since schema 3 a mark's value is not JSON but a compact
// record in the protobuf wire format (protowire: numbered, length-prefixed
// fields; unknown fields are skipped, so a field can be added without a
// migration). The value leaves out what the key holds (the policy, and the
// token id unless it is spelled in capitals), a deadline that is just
// WarnedAt + Grace, and stores a hex owner id as bytes: 434 bytes of JSON
// and key become about 190, most of it the reason text.
//
// The first byte tells the formats apart: markFormat, never '{', with which
// every JSON mark of schema 1 and 2 begins. Readers take both, so a read-only
// command reads a store not yet migrated.
const markFormat = 0x01

// Field numbers of the mark record. They are part of the on-disk format.
const (
	fTokenID     protowire.Number = 1 // only when it differs from the key's (lowered) id
	fName        protowire.Number = 2
	fOwner       protowire.Number = 3 // the owner id as spelled
	fOwnerHex    protowire.Number = 4 // or, for an id of lowercase hex digits, its bytes
	fAction      protowire.Number = 5
	fChange      protowire.Number = 6
	fReason      protowire.Number = 7
	fGraceSec    protowire.Number = 8
	fGraceNsec   protowire.Number = 9
	fMarkedSec   protowire.Number = 10
	fMarkedNsec  protowire.Number = 11
	fWarnedSec   protowire.Number = 12
	fWarnedNsec  protowire.Number = 13
	fDeadlineSec protowire.Number = 14 // only when not WarnedAt + Grace
	fDeadlineNs  protowire.Number = 15
	fNoDeadline  protowire.Number = 16 // warned, but no deadline (a mark written by hand)
)

// encodeMark is the stored value of m under key (see MarkKey.key).
func encodeMark(key string, m Mark) []byte {
	b := make([]byte, 0, 96+len(m.TokenName)+len(m.Reason)+len(m.Change))
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
	tm := func(sec, nsec protowire.Number, t time.Time) {
		if t.IsZero() {
			return
		}
		// Always present for a set time, so that a zero field is a zero time.
		b = protowire.AppendTag(b, sec, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(t.Unix()))
		num(nsec, int64(t.Nanosecond()))
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
	str(fAction, m.Action)
	str(fChange, m.Change)
	str(fReason, m.Reason)
	num(fGraceSec, int64(m.Grace/time.Second))
	num(fGraceNsec, int64(m.Grace%time.Second))
	tm(fMarkedSec, fMarkedNsec, m.MarkedAt)
	if m.WarnedAt != nil {
		tm(fWarnedSec, fWarnedNsec, *m.WarnedAt)
		switch {
		case m.Deadline == nil:
			num(fNoDeadline, 1)
		case !m.Deadline.Equal(m.WarnedAt.Add(m.Grace)):
			tm(fDeadlineSec, fDeadlineNs, *m.Deadline)
		}
	} else if m.Deadline != nil {
		// Not written by this package (the clock fields go together), but
		// kept as read rather than lost.
		tm(fDeadlineSec, fDeadlineNs, *m.Deadline)
	}
	return b
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

var errMarkRecord = errors.New("malformed mark record")

// maxUnixSec bounds the seconds of a stored time (about year 36,800).
const maxUnixSec = 1 << 40

// decodeMark reads a mark stored under key in either format.
func decodeMark(key, raw []byte) (Mark, error) {
	tok, pol, ok := bytes.Cut(key, []byte{0})
	if !ok {
		return Mark{}, fmt.Errorf("mark key %q: no policy", key)
	}
	if len(raw) > 0 && raw[0] != markFormat {
		var m Mark
		if err := json.Unmarshal(raw, &m); err != nil {
			return Mark{}, err
		}
		return m, nil
	}
	if len(raw) == 0 {
		return Mark{}, errMarkRecord
	}
	m := Mark{TokenID: string(tok), Policy: string(pol)}
	var graceSec, graceNsec int64
	var marked, warned, deadline [2]int64
	var hasMarked, hasWarned, hasDeadline, noDeadline bool
	b := raw[1:]
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return Mark{}, fmt.Errorf("%w: %w", errMarkRecord, protowire.ParseError(l))
		}
		b = b[l:]
		var v int64
		var s []byte
		switch typ {
		case protowire.VarintType:
			u, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return Mark{}, fmt.Errorf("%w: field %d: %w", errMarkRecord, n, protowire.ParseError(l))
			}
			v, b = protowire.DecodeZigZag(u), b[l:]
		case protowire.BytesType:
			bs, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return Mark{}, fmt.Errorf("%w: field %d: %w", errMarkRecord, n, protowire.ParseError(l))
			}
			s, b = bs, b[l:]
		default:
			l := protowire.ConsumeFieldValue(n, typ, b)
			if l < 0 {
				return Mark{}, fmt.Errorf("%w: field %d: %w", errMarkRecord, n, protowire.ParseError(l))
			}
			b = b[l:]
			continue
		}
		switch n {
		case fTokenID:
			m.TokenID = string(s)
		case fName:
			m.TokenName = string(s)
		case fOwner:
			m.OwnerID = string(s)
		case fOwnerHex:
			m.OwnerID = hex.EncodeToString(s)
		case fAction:
			m.Action = string(s)
		case fChange:
			m.Change = string(s)
		case fReason:
			m.Reason = string(s)
		case fGraceSec:
			graceSec = v
		case fGraceNsec:
			graceNsec = v
		case fMarkedSec:
			marked[0], hasMarked = v, true
		case fMarkedNsec:
			marked[1] = v
		case fWarnedSec:
			warned[0], hasWarned = v, true
		case fWarnedNsec:
			warned[1] = v
		case fDeadlineSec:
			deadline[0], hasDeadline = v, true
		case fDeadlineNs:
			deadline[1] = v
		case fNoDeadline:
			noDeadline = v != 0
		}
	}
	for _, t := range [][2]int64{marked, warned, deadline} {
		// Beyond any real date, and where time.Unix would overflow.
		if t[0] < -maxUnixSec || t[0] > maxUnixSec || t[1] < 0 || t[1] >= 1e9 {
			return Mark{}, fmt.Errorf("%w: time %d.%09d out of range", errMarkRecord, t[0], t[1])
		}
	}
	m.Grace = time.Duration(graceSec)*time.Second + time.Duration(graceNsec)
	unix := func(t [2]int64) time.Time { return time.Unix(t[0], t[1]).UTC() }
	if hasMarked {
		m.MarkedAt = unix(marked)
	}
	if hasWarned {
		w := unix(warned)
		m.WarnedAt = &w
		if !noDeadline {
			d := w.Add(m.Grace)
			m.Deadline = &d
		}
	}
	if hasDeadline {
		d := unix(deadline)
		m.Deadline = &d
	}
	return m, nil
}

// migrateToV3 rewrites every mark stored as JSON in the compact record.
func migrateToV3(tx *bolt.Tx) error {
	b := bucket(tx, bucketMarks)
	type entry struct{ k, v []byte }
	var old []entry
	err := b.ForEach(func(k, v []byte) error {
		if len(v) > 0 && v[0] != markFormat {
			old = append(old, entry{bytes.Clone(k), bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Writing while iterating with ForEach is not allowed in bbolt.
	for _, e := range old {
		m, err := decodeMark(e.k, e.v)
		if err != nil {
			return fmt.Errorf("mark %q: %w", e.k, err)
		}
		if err := b.Put(e.k, encodeMark(string(e.k), m)); err != nil {
			return fmt.Errorf("write mark %q: %w", e.k, err)
		}
	}
	return nil
}

func putMark(b *bolt.Bucket, key string, raw []byte) error {
	if err := b.Put([]byte(key), raw); err != nil {
		return fmt.Errorf("write mark %q: %w", key, err)
	}
	return nil
}
