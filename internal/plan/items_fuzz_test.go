package plan

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// FuzzItemsOps drives Items with a sequence of operations drawn from the
// fuzzer's bytes (Append, Set, Sort) over items built from pieces at the
// edges of the compact form: ids of 32 hexadecimal digits in either case,
// mixed, with an invisible character or one digit short, owner ids and
// quoted token names inside reasons, reason times of the packed layout and
// of others, times outside the packed years or not in UTC, nil next to
// empty. Each Sort must leave compareItems' order, and after the last
// operation every read (At, Slice, TokenID, Decision, Mutating, Brief and
// the accessors of one field, the encoder's row, IsSorted) must agree with
// a []Item that went through the same operations.
func FuzzItemsOps(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"))
	f.Add([]byte("\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x80\x40\x20\x10\x08\x04\x02\x01"))
	f.Add([]byte("\x00\x05\x05\x05\x05\x05\x05\x05\x05\x00\x06\x06\x06\x06\x06\x06\x06\x06\x80\x01\x02\x03\x04\x05\x06\x07\x08\x09\xc0"))
	const hexLo, hexUp = "2c9180867624cbd7017642d6aaaaaaaa", "2C9180867624CBD7017642D6AAAAAAAA"
	ids := []string{hexLo, hexUp, "2c9180867624CBD7017642d6aaaaaaaa", hexLo + "\u200b", "\ufeff" + hexLo, hexLo[:31],
		"00000000000000000000000000000000", "ffffffffffffffffffffffffffffffff", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "", "\x00", "\xff"}
	names := []string{"", "ci", `"q"`, "\xff\x00", "日本", "\u2028<&>", "ci ", "Ci"}
	reasons := []string{"", "lastUsed %[3]s is at or before 2026-08-28T03:00:00.000Z", "owner %[1]s of %[2]q", "%[1]s%[1]s",
		"2026-07-26T03:00:00Z 2026-07-26T03:00:00.1Z 2026-07-26T03:00:00.123456789Z 2026-07-26T05:00:00.000+02:00",
		"2016-12-31T23:59:60.000Z 2026-02-29T00:00:00.000Z 0000-01-01T00:00:00.000Z 9999-12-31T23:59:59.999Z",
		"%[3]s%[3]s\x00\xff %[2]q %[1]s"}
	est := time.FixedZone("EST", -5*3600)
	times := []time.Time{t0, {}, t0.Add(123456789), t0.In(est), time.Date(1677, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2262, 6, 1, 0, 0, 0, 1, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(0, packedMin).UTC(), time.Time{}.In(est)}
	patches := [][]pat.PatchOp{nil, {}, {pat.SetScopes(nil)}, {pat.SetScopes([]string{})}, {pat.SetScopes([]string{""}), pat.Rename("\xff")},
		{pat.SetExpiration(t0), pat.SetNeverExpires(false)}, {pat.SetNeverExpires(true)}}
	modes := []string{ModeEnforce, ModeReport, ModeGrace, ModeNeedsOwner, ""}
	actions := []string{ActionDelete, ActionPatch, ActionExpire, ActionReport, "x"}
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() int {
			if len(data) == 0 {
				return 0
			}
			c := data[0]
			data = data[1:]
			return int(c)
		}
		timePtr := func(c int) *time.Time {
			if c%(len(times)+1) == len(times) {
				return nil
			}
			return tp(times[c%(len(times)+1)])
		}
		item := func() Item {
			a, b, c, d := next(), next(), next(), next()
			it := Item{
				TokenID: ids[a%len(ids)], OwnerID: ids[a/len(ids)%len(ids)],
				TokenName: names[b%len(names)], OwnerName: names[b/len(names)%len(names)],
				Created: times[c%len(times)], LastUsed: timePtr(c / 2), ExpirationDate: timePtr(c / 3),
				Marked: timePtr(d), Deadline: timePtr(d / 2),
				Policy: names[d%len(names)], Mode: modes[c%len(modes)], Action: actions[d%len(actions)],
				Patch: patches[b%len(patches)], Managed: a&1 != 0,
			}
			switch c % 4 {
			case 0:
				it.Scope = pat.Scopes{Null: true}
			case 1:
				it.Scope = pat.ScopesOf()
			case 2:
				it.Scope = pat.ScopesOf("", "sp:scopes:all")
			}
			if d%3 == 0 {
				it.AlsoMatched = []string{}
			} else if d%3 == 1 {
				it.AlsoMatched = []string{it.Policy, ""}
			}
			it.Reason = fmt.Sprintf(reasons[d/4%len(reasons)], it.OwnerID, it.TokenName, pat.FormatTime(times[c%len(times)]))
			return it
		}
		var s Items
		var want []Item
		for len(data) > 0 && len(want) < 300 {
			switch op := next(); {
			case op < 160 || len(want) == 0:
				it := item()
				s.Append(it)
				want = append(want, it)
			case op < 240:
				i := next() % len(want)
				it := item()
				s.Set(i, it)
				want[i] = it
			default:
				s.Sort()
				// Ties (no two tokens of a plan share all five keys)
				// are left to either order: take the one Sort chose.
				got := s.Slice()
				sortRef(want)
				// got must be want in that order: within each run of
				// items equal in the five keys, the same items whole.
				for lo := 0; lo < len(want); {
					hi := lo + 1
					for hi < len(want) && compareItems(&want[lo], &want[hi]) == 0 {
						hi++
					}
					if !samePermuted(got[lo:hi], want[lo:hi]) {
						t.Fatalf("after Sort, items %d to %d:\n got %+v\nwant %+v (in some order)", lo, hi-1, got[lo:hi], want[lo:hi])
					}
					lo = hi
				}
				want = got
			}
		}
		sameItems(t, "Slice", s.Slice(), want)
		for i := range want {
			if id := s.TokenID(i); id != want[i].TokenID {
				t.Fatalf("item %d: TokenID %q, want %q", i, id, want[i].TokenID)
			}
			p, m, a := s.Decision(i)
			if p != want[i].Policy || m != want[i].Mode || a != want[i].Action || s.Mutating(i) != want[i].Mutating() {
				t.Fatalf("item %d: Decision %q %q %q, Mutating %v; the item says %q %q %q, %v", i, p, m, a, s.Mutating(i),
					want[i].Policy, want[i].Mode, want[i].Action, want[i].Mutating())
			}
		}
		if got, w := s.IsSorted(), slices.IsSortedFunc(want, func(a, b Item) int { return compareItems(&a, &b) }); got != w {
			t.Fatalf("IsSorted %v, compareItems says %v", got, w)
		}
		sameEncoding(t, &s, want)
		sameBriefs(t, &s, want)
	})
}

// samePermuted reports whether got holds the items of want, each whole, in
// some order.
func samePermuted(got, want []Item) bool {
	used := make([]bool, len(want))
	for i := range got {
		j := 0
		for ; j < len(want); j++ {
			if !used[j] && reflect.DeepEqual(got[i], want[j]) {
				break
			}
		}
		if j == len(want) {
			return false
		}
		used[j] = true
	}
	return len(got) == len(want)
}
