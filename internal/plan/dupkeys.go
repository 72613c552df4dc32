package plan

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"
)

// duplicateKey returns the first key that one object of the JSON document
// data holds twice, and its offset (ok false when there is none). data must
// be valid JSON (parse decodes it first).
//
// Why a plan may not have one: encoding/json keeps the last of two equal
// keys, and so does the planHash (computed over the parsed plan), while a
// reviewer reading the file sees the first. Reviewers sign the bytes: a
// document with two meanings would let a plan that reads "items": [] carry
// the deletes that follow it. Keys compare as encoding/json matches them to
// fields: decoded ("\u0069tems" is "items") and without regard to case, in
// Unicode's simple folding ("ITEMS" and "items", "\u212aind" and "kind", all
// fill the same field).
func duplicateKey(data []byte) (key string, offset int, ok bool) {
	// One frame per open object or array (arrays have isObj false). Small
	// objects keep their keys in a slice, large ones in a map too, so a
	// hostile object of a million keys costs linear time.
	type frame struct {
		isObj bool
		keys  [][]byte
		set   map[string]struct{}
	}
	const smallObject = 32
	var stack []frame
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{':
			stack = append(stack, frame{isObj: true})
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case '"':
			start, escaped := i, false
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					escaped = true
					i++
				}
			}
			if len(stack) == 0 || !stack[len(stack)-1].isObj {
				continue
			}
			j := i + 1
			for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
				j++
			}
			if j >= len(data) || data[j] != ':' {
				continue // a value, not a key
			}
			k := data[start+1 : i]
			if escaped {
				var s string
				if json.Unmarshal(data[start:i+1], &s) == nil {
					k = []byte(s)
				}
			}
			f := &stack[len(stack)-1]
			if f.set != nil {
				fk := foldKey(k)
				if _, dup := f.set[fk]; dup {
					return string(k), start, true
				}
				f.set[fk] = struct{}{}
				continue
			}
			for _, seen := range f.keys {
				if bytes.EqualFold(seen, k) {
					return string(k), start, true
				}
			}
			f.keys = append(f.keys, k)
			if len(f.keys) > smallObject {
				f.set = make(map[string]struct{}, 2*smallObject)
				for _, seen := range f.keys {
					f.set[foldKey(seen)] = struct{}{}
				}
				f.keys = nil
			}
		}
	}
	return "", 0, false
}

// foldKey maps a key to one representative of its case-folding class: two
// keys have the same foldKey exactly when bytes.EqualFold holds for them.
func foldKey(k []byte) string {
	var b strings.Builder
	b.Grow(len(k))
	for _, r := range string(k) {
		lo := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			lo = min(lo, f)
		}
		b.WriteRune(lo)
	}
	return b.String()
}
