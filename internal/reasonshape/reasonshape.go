// Package reasonshape cuts a policy's reason text into its shape (the
// prose, the same for every token a policy decides under the same
// conditions) and the token's values in it (the times, the quoted name, the
// owner id), and renders them back byte for byte. The grace marks of the
// state store keep each shape once on disk; a plan keeps each once in
// memory.
package reasonshape

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// A Shape is a reason text with its token-specific parts cut out: the
// times it names (as pat.FormatTime writes them), the token's quoted name
// and its owner id. Every token a policy marks for the same conditions has
// the same shape, so the store keeps each shape once (markcodec.go).
type Shape []Part

// Part is literal text, or a hole for one of the token's values.
type Part struct {
	lit  string
	hole byte // 0: lit; else holeTime, holeName or holeOwner
}

// The holes of a shape. Part of the on-disk format.
const (
	holeTime  = 1 // the next of the mark's reason times
	holeName  = 2 // the token's name, quoted (strconv.Quote)
	holeOwner = 3 // the owner id as spelled
)

// Fields of a stored shape, in order: literal text and holes.
const (
	fShapeLit  protowire.Number = 1
	fShapeHole protowire.Number = 2
)

// TimeLayout is how explanations write a time (pat.FormatTime).
const TimeLayout = "2006-01-02T15:04:05.000Z"

// minOwnerHole is the shortest owner id cut out of a reason: a shorter one
// (a hand-made id) would also match inside unrelated text.
const minOwnerHole = 8

// AppendCut cuts reason into its shape, appended to dst as stored (see
// Shape.Encode), and its times (unix ms), appended to times. Only
// text that renders back byte for byte is cut out, so the shape, the times,
// the name and the owner id always make the same reason again. It writes
// the stored form directly: it runs for every mark a run reconciles.
func AppendCut(dst []byte, times []int64, reason, name, owner string) ([]byte, []int64) {
	quoted := ""
	// A quoted name begins with '"': without one in the reason there is
	// nothing to cut, and no quoting to pay for (it runs for every item of
	// a plan).
	if name != "" && strings.IndexByte(reason, '"') >= 0 {
		quoted = strconv.Quote(name)
	}
	if len(owner) < minOwnerHole {
		owner = ""
	}
	lit := 0 // start of the literal text not yet in dst
	hole := func(i, n int, h byte) int {
		if i > lit {
			dst = protowire.AppendTag(dst, fShapeLit, protowire.BytesType)
			dst = protowire.AppendString(dst, reason[lit:i])
		}
		dst = protowire.AppendTag(dst, fShapeHole, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(h))
		lit = i + n
		return lit
	}
	for i := 0; i < len(reason); {
		if ms, ok := reasonTime(reason[i:]); ok {
			times = append(times, ms)
			i = hole(i, len(TimeLayout), holeTime)
			continue
		}
		if quoted != "" && strings.HasPrefix(reason[i:], quoted) {
			i = hole(i, len(quoted), holeName)
			continue
		}
		if owner != "" && strings.HasPrefix(reason[i:], owner) {
			i = hole(i, len(owner), holeOwner)
			continue
		}
		i++
	}
	if lit < len(reason) {
		dst = protowire.AppendTag(dst, fShapeLit, protowire.BytesType)
		dst = protowire.AppendString(dst, reason[lit:])
	}
	return dst, times
}

// reasonTime reads a time as explanations write it at the start of s: what
// time.Parse takes with TimeLayout and Format writes back the same (four
// digits of year, every field in range, the day one of its month). It reads
// the digits itself: it looks at every position of every reason of a plan,
// and time.Parse and Format cost more than the rest of the cutting.
func reasonTime(s string) (int64, bool) {
	const n = len(TimeLayout)
	// Cheap checks first: most positions are not a time.
	if len(s) < n || s[4] != '-' || s[10] != 'T' || s[n-1] != 'Z' ||
		s[7] != '-' || s[13] != ':' || s[16] != ':' || s[19] != '.' {
		return 0, false
	}
	num := func(i, w int) int {
		v := 0
		for _, c := range []byte(s[i : i+w]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d := num(0, 4), num(5, 2), num(8, 2)
	h, mi, sec, ms := num(11, 2), num(14, 2), num(17, 2), num(20, 3)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
		mi < 0 || mi > 59 || sec < 0 || sec > 59 || ms < 0 {
		return 0, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ms*1e6, time.UTC)
	if t.Day() != d { // February 30 is March 2
		return 0, false
	}
	return t.UnixMilli(), true
}

// Render makes the reason text of a shape with a mark's values.
func (sh Shape) Render(times []int64, name, owner string) (string, error) {
	b, err := sh.Append(make([]byte, 0, 128), times, name, owner)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Append appends the reason text of a shape with a mark's values to b.
func (sh Shape) Append(b []byte, times []int64, name, owner string) ([]byte, error) {
	next := 0
	for _, p := range sh {
		switch p.hole {
		case 0:
			b = append(b, p.lit...)
		case holeTime:
			if next == len(times) {
				return nil, fmt.Errorf("%d reason times, the shape has more", len(times))
			}
			b = appendTime(b, times[next])
			next++
		case holeName:
			b = strconv.AppendQuote(b, name)
		case holeOwner:
			b = append(b, owner...)
		}
	}
	if next != len(times) {
		return nil, fmt.Errorf("%d reason times, the shape has %d", len(times), next)
	}
	return b, nil
}

// Times returns how many times the shape renders (the length of the
// times it must be given).
func (sh Shape) Times() int {
	n := 0
	for _, p := range sh {
		if p.hole == holeTime {
			n++
		}
	}
	return n
}

// HasOwner reports whether the shape renders the owner id.
func (sh Shape) HasOwner() bool {
	for _, p := range sh {
		if p.hole == holeOwner {
			return true
		}
	}
	return false
}

// appendTime appends a time in TimeLayout, as time.AppendFormat does
// (which interprets its layout on every call: a plan renders a reason's
// times each time it encodes or reads an item).
func appendTime(b []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(b, TimeLayout)
	}
	h, mi, s := t.Clock()
	f := t.Nanosecond() / 1e6
	return append(b,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+s/10), byte('0'+s%10), '.',
		byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10), 'Z')
}

// Encode returns the stored form of the shape (what AppendCut appends).
func (sh Shape) Encode() []byte {
	var b []byte
	for _, p := range sh {
		if p.hole == 0 {
			b = protowire.AppendTag(b, fShapeLit, protowire.BytesType)
			b = protowire.AppendString(b, p.lit)
		} else {
			b = protowire.AppendTag(b, fShapeHole, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(p.hole))
		}
	}
	return b
}

var errShape = errors.New("malformed reason shape")

// Decode reads a shape in its stored form.
func Decode(b []byte) (Shape, error) {
	var sh Shape
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, fmt.Errorf("%w: %w", errShape, protowire.ParseError(l))
		}
		b = b[l:]
		switch {
		case n == fShapeLit && typ == protowire.BytesType:
			s, l := protowire.ConsumeString(b)
			if l < 0 {
				return nil, fmt.Errorf("%w: %w", errShape, protowire.ParseError(l))
			}
			sh, b = append(sh, Part{lit: s}), b[l:]
		case n == fShapeHole && typ == protowire.VarintType:
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return nil, fmt.Errorf("%w: %w", errShape, protowire.ParseError(l))
			}
			if v < holeTime || v > holeOwner {
				return nil, fmt.Errorf("%w: unknown hole %d", errShape, v)
			}
			sh, b = append(sh, Part{hole: byte(v)}), b[l:]
		default:
			return nil, fmt.Errorf("%w: unexpected field %d", errShape, n)
		}
	}
	return sh, nil
}
