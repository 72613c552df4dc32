package plan

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// hostileItems are items whose every field is at an edge of what the
// compact form packs: ids that are almost 32 hexadecimal digits, times
// that nanoseconds since 1970 cannot hold or that are not UTC, nil next
// to empty, invalid UTF-8, and reasons that look like a shape but are not.
func hostileItems() []Item {
	const hexID = "2c9180835d2e5168015d32f812345678"
	owner := "2c9180867624cbd7017642d6aaaaaaaa"
	est := time.FixedZone("EST", -5*3600)
	now := time.Now() // with a monotonic reading
	farFuture := time.Date(12026, 1, 2, 3, 4, 5, 6, time.UTC)
	farPast := time.Date(-44, 3, 15, 12, 0, 0, 0, time.UTC)
	lastNS := time.Unix(0, math.MaxInt64).UTC()
	before := time.Unix(0, packedMin-1).UTC()
	firstNS := time.Unix(0, packedMin).UTC()
	items := []Item{
		{TokenID: hexID, TokenName: "ci", OwnerID: owner, OwnerName: "Ada", Created: t0,
			Reason: "lastUsed 2026-07-26T03:00:00.123Z is at or before 2026-08-28T03:00:00.000Z (unusedFor 90d)",
			Policy: "p", Mode: ModeEnforce, Action: ActionDelete, LastUsed: tp(t0.Add(-time.Hour))},
		{TokenID: "2C9180835D2E5168015D32F812345678", OwnerID: "2C9180867624CBD7017642D6AAAAAAAA", Created: t0,
			Reason: `owner 2C9180867624CBD7017642D6AAAAAAAA of "ci"`, TokenName: "ci"},
		{TokenID: "2c9180835D2E5168015d32f812345678", OwnerID: "2c9180867624cbd7017642d6aaaaaaa", Created: t0},   // mixed case; 31 digits
		{TokenID: "2c9180835d2e5168015d32f8123456789", OwnerID: "2c9180867624cbd7017642d6aaaaaaag", Created: t0}, // 33 digits; a g
		{TokenID: "", OwnerID: "", Created: time.Time{}, Scope: pat.Scopes{Null: true}},
		{TokenID: "\x00\xff\xfe", TokenName: "\xff\x00\"quoted\"", OwnerName: "\u2028<&>", Created: now,
			LastUsed: &now, ExpirationDate: tp(now.In(est)), Marked: tp(farFuture), Deadline: tp(farPast),
			Reason: "name \"\\xff\\x00\\\"quoted\\\"\" 2026-02-30T10:00:00.000Z 2028-02-29T24:00:00.000Z \xff", Scope: pat.ScopesOf()},
		{TokenID: hexID, Created: t0.In(est), LastUsed: tp(lastNS), ExpirationDate: tp(before), Marked: tp(firstNS),
			Deadline: tp(time.Time{}), Scope: pat.Scopes{Values: []string{}},
			Patch: []pat.PatchOp{}, AlsoMatched: []string{}},
		{TokenID: hexID, Created: t0.Add(999 * time.Nanosecond), Scope: pat.Scopes{Null: true, Values: []string{"odd"}},
			Patch:       []pat.PatchOp{pat.SetScopes(nil), pat.SetScopes([]string{}), pat.Rename("\xff"), pat.SetExpiration(farFuture), pat.SetNeverExpires(true), {}},
			AlsoMatched: []string{"a", "", "a"}, Managed: true,
			Reason: "9999-12-31T23:59:59.999Z0000-01-01T00:00:00.000Z-0001-01-01T00:00:00.000Z"},
		{TokenID: hexID, Created: t0, Scope: pat.ScopesOf("sp:scopes:all", "\x00"), Policy: "p\x00", Mode: "", Action: "\xff",
			Patch: []pat.PatchOp{pat.SetScopes([]string{})}},
		{TokenID: hexID, Created: t0, Patch: []pat.PatchOp{pat.SetScopes(nil)}, Reason: "2026-07-26T03:00:00.000Z"},
		{TokenID: hexID, Created: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), LastUsed: tp(time.Time{}.In(est))},
		// Grace times beside a reason without times, one without the other.
		{TokenID: hexID, Created: t0, Deadline: tp(t0), Reason: "prose"},
		{TokenID: hexID, Created: t0, Marked: tp(now), Reason: "2026-07-26T03:00:00.000Z and 2026-07-27T03:00:00.000Z"},
		{TokenID: hexID, Created: t0, Marked: tp(t0), Deadline: tp(now.In(est))},
	}
	return items
}

// randomItems are n items drawn like a large tenant's plan: a few hundred
// names and owners, reasons with times, and now and then something
// hostile.
func randomItems(rng *rand.Rand, n int) []Item {
	hostile := hostileItems()
	policies := []string{"unused-90d", "never-used-30d", "all-scopes", "expiring", "Zeta"}
	cutoff := t0.AddDate(0, 0, -90)
	out := make([]Item, n)
	for i := range out {
		if rng.IntN(20) == 0 {
			out[i] = hostile[rng.IntN(len(hostile))]
			out[i].TokenID = fmt.Sprintf("%s-%d", out[i].TokenID, i) // unique, as in a plan
			continue
		}
		created := t0.Add(-time.Duration(rng.Int64N(3*365*24)) * time.Hour).Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
		owner := rng.IntN(n/3 + 1)
		it := Item{
			TokenID:   fmt.Sprintf("%032x", rng.Uint64()<<20|uint64(i)),
			TokenName: fmt.Sprintf("token-%d", rng.IntN(114)),
			OwnerID:   fmt.Sprintf("%032x", owner*7919),
			OwnerName: fmt.Sprintf("Owner %d", owner%900),
			Created:   created,
			Scope:     pat.ScopesOf([]string{"sp:scopes:all", "idn:sources:read"}[:rng.IntN(3)]...),
			Policy:    policies[rng.IntN(len(policies))],
			Mode:      ModeEnforce,
			Action:    ActionDelete,
			Patch:     []pat.PatchOp{},
		}
		switch rng.IntN(4) {
		case 0:
			it.Scope = pat.Scopes{Null: true}
		case 1:
			it.Mode, it.Action = ModeReport, ActionReport
			it.AlsoMatched = []string{policies[0]}
		case 2:
			it.Action = ActionPatch
			it.Patch = []pat.PatchOp{pat.SetScopes([]string{"sp:scopes:default"})}
		}
		if it.AlsoMatched == nil {
			it.AlsoMatched = []string{}
		}
		if rng.IntN(3) > 0 {
			lu := created.Add(time.Duration(rng.Int64N(int64(300 * 24 * time.Hour))))
			it.LastUsed = &lu
			it.Reason = fmt.Sprintf("lastUsed %s is at or before %s (unusedFor 90d)", pat.FormatTime(lu), pat.FormatTime(cutoff))
		} else {
			it.Reason = fmt.Sprintf("never used, created %s is at or before %s (unusedFor 30d)", pat.FormatTime(created), pat.FormatTime(cutoff))
		}
		if rng.IntN(3) > 0 {
			it.ExpirationDate = tp(created.AddDate(1, 0, 0))
		}
		if rng.IntN(10) == 0 {
			it.Mode = ModeGrace
			it.Marked = tp(t0.AddDate(0, 0, -3))
			if rng.IntN(2) == 0 {
				it.Deadline = tp(t0.AddDate(0, 0, 11))
			}
		}
		out[i] = it
	}
	return out
}

// sameItems fails unless got deep-equals want, item by item.
func sameItems(t *testing.T, stage string, got, want []Item) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d items, want %d", stage, len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s: item %d:\n got %#v\nwant %#v", stage, i, got[i], want[i])
		}
	}
}

// sameBrief fails unless b, Brief's reading of item i of s, and the
// other accessors of one field say what the item says, nil apart from
// empty.
func sameBrief(t *testing.T, s *Items, i int, b *Brief, want *Item) {
	t.Helper()
	fail := func(field string, got, want any) {
		t.Helper()
		t.Fatalf("item %d: Brief's %s %#v, the item's %#v", i, field, got, want)
	}
	switch {
	case b.TokenID != want.TokenID:
		fail("TokenID", b.TokenID, want.TokenID)
	case b.TokenName != want.TokenName:
		fail("TokenName", b.TokenName, want.TokenName)
	case b.OwnerID != want.OwnerID:
		fail("OwnerID", b.OwnerID, want.OwnerID)
	case b.OwnerName != want.OwnerName:
		fail("OwnerName", b.OwnerName, want.OwnerName)
	case b.Reason != want.Reason:
		fail("Reason", b.Reason, want.Reason)
	case b.HasLastUsed != (want.LastUsed != nil) || b.HasLastUsed && !reflect.DeepEqual(b.LastUsed, *want.LastUsed):
		fail("LastUsed", b.LastUsed, want.LastUsed)
	case b.HasDeadline != (want.Deadline != nil) || b.HasDeadline && !reflect.DeepEqual(b.Deadline, *want.Deadline):
		fail("Deadline", b.Deadline, want.Deadline)
	case !reflect.DeepEqual(b.Patch, want.Patch):
		fail("Patch", b.Patch, want.Patch)
	case !reflect.DeepEqual(b.AlsoMatched, want.AlsoMatched):
		fail("AlsoMatched", b.AlsoMatched, want.AlsoMatched)
	}
	if got := s.TokenName(i); got != want.TokenName {
		fail("TokenName(i)", got, want.TokenName)
	}
	if got := s.OwnerName(i); got != want.OwnerName {
		fail("OwnerName(i)", got, want.OwnerName)
	}
	if got := string(s.AppendTokenID([]byte("x"), i)); got != "x"+want.TokenID {
		fail("AppendTokenID", got, "x"+want.TokenID)
	}
	if got := string(s.AppendOwnerID([]byte("x"), i)); got != "x"+want.OwnerID {
		fail("AppendOwnerID", got, "x"+want.OwnerID)
	}
}

// sameBriefs checks Brief against every item of s with one Brief reused
// from item to item, as a table does, then checks the copies kept of
// each again: reusing a Brief does not change the strings it gave.
func sameBriefs(t *testing.T, s *Items, want []Item) {
	t.Helper()
	var b Brief
	kept := make([]Brief, len(want))
	for i := range want {
		s.Brief(i, &b)
		sameBrief(t, s, i, &b, &want[i])
		kept[i] = b
	}
	for i := range want {
		sameBrief(t, s, i, &kept[i], &want[i])
	}
}

// Every item comes back from Items exactly as it was given, through At,
// All, Slice, Brief and after Set: the compact form loses nothing.
func TestItemsRoundTrip(t *testing.T) {
	want := append(hostileItems(), samplePlan().Items.Slice()...)
	// 1,000 random items (5,000 until the race suite's CPU diet): about
	// 330 owners and every token name, so the arena holds values shared by
	// many items and items whose values are their own; FuzzItems explores
	// the values themselves, and the hostile items above are all kept.
	want = append(want, randomItems(rand.New(rand.NewPCG(1, 2)), 1000)...)
	s := NewItems(want...)
	if s.Len() != len(want) {
		t.Fatalf("Len %d, want %d", s.Len(), len(want))
	}
	sameItems(t, "Slice", s.Slice(), want)
	var all []Item
	for i, it := range s.All() {
		if i != len(all) {
			t.Fatalf("All yielded index %d, want %d", i, len(all))
		}
		all = append(all, it)
	}
	sameItems(t, "All", all, want)
	for i := range want {
		if got := s.At(i); !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("At(%d):\n got %#v\nwant %#v", i, got, want[i])
		}
		if id := s.TokenID(i); id != want[i].TokenID {
			t.Fatalf("item %d: TokenID %q, want %q", i, id, want[i].TokenID)
		}
		p, m, a := s.Decision(i)
		if p != want[i].Policy || m != want[i].Mode || a != want[i].Action || s.Mutating(i) != want[i].Mutating() {
			t.Fatalf("item %d: Decision %q %q %q, Mutating %v; the item says %q %q %q, %v", i, p, m, a, s.Mutating(i),
				want[i].Policy, want[i].Mode, want[i].Action, want[i].Mutating())
		}
	}
	sameBriefs(t, &s, want)
	// Set: each hostile item in place of another, then back.
	h := hostileItems()
	var set []Item
	for i := range want {
		s.Set(i, h[i%len(h)])
		set = append(set, h[i%len(h)])
	}
	for i := range want {
		if got := s.At(i); !reflect.DeepEqual(got, h[i%len(h)]) {
			t.Fatalf("after Set, At(%d):\n got %#v\nwant %#v", i, got, h[i%len(h)])
		}
	}
	sameBriefs(t, &s, set)
	for i := range want {
		s.Set(i, want[i])
	}
	sameItems(t, "Set back", s.Slice(), want)
}

// sameEncoding fails unless the encoder writes each item of s from its
// compact form exactly as it writes the Item, compact and indented.
func sameEncoding(t *testing.T, s *Items, want []Item) {
	t.Helper()
	for _, indent := range []bool{false, true} {
		for i := range want {
			a := encoder{indent: indent, depth: 2}
			a.elem()
			a.item(&want[i])
			b := encoder{indent: indent, depth: 2}
			b.elem()
			b.row(&s.c, i)
			if !bytes.Equal(a.buf, b.buf) {
				t.Fatalf("item %d (indent %v): the compact form writes\n%s\nthe Item\n%s", i, indent, b.buf, a.buf)
			}
		}
	}
}

// The encoder writes an item from the compact form byte for byte as it
// writes the Item (reference_test.go checks the Item's encoding against
// encoding/json).
// A row is 88 bytes: the grace times, which few items have, are in the
// arena and not in every row (104 bytes with them).
func TestItemsRowSize(t *testing.T) {
	if size := unsafe.Sizeof(row{}); size != 88 {
		t.Errorf("a row takes %d bytes, want 88", size)
	}
}

func TestItemsEncodeAsItems(t *testing.T) {
	want := append(hostileItems(), samplePlan().Items.Slice()...)
	want = append(want, randomItems(rand.New(rand.NewPCG(7, 8)), 3000)...)
	s := NewItems(want...)
	sameEncoding(t, &s, want)
}

// An item read from Items is a copy: changing its lists or times changes
// nothing stored.
func TestItemsAtIsACopy(t *testing.T) {
	want := samplePlan().Items.Slice()
	s := NewItems(want...)
	for i := range s.Len() {
		it := s.At(i)
		for j := range it.Scope.Values {
			it.Scope.Values[j] = "changed"
		}
		for j := range it.AlsoMatched {
			it.AlsoMatched[j] = "changed"
		}
		for j := range it.Patch {
			it.Patch[j] = pat.Rename("changed")
		}
		for _, p := range []*time.Time{it.LastUsed, it.ExpirationDate, it.Marked, it.Deadline} {
			if p != nil {
				*p = time.Time{}
			}
		}
	}
	sameItems(t, "after changing copies", s.Slice(), want)
	var empty Items
	if empty.Len() != 0 || empty.Slice() != nil || !empty.IsSorted() {
		t.Fatal("the zero Items are not empty")
	}
}

// Items.Sort puts items in compareItems' order, for ids of every
// spelling, owners that share a name and names that share a prefix; and
// IsSorted agrees with it.
func TestItemsSortMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 20 {
		// Up to 600 items a round (3,000 until the race suite's CPU diet):
		// each round still has the 50 owner ids of every spelling below,
		// empty owner names, owners of one name (randomItems' hostile
		// items) and names that share a prefix ("Owner 1", "Owner 10");
		// the sizes that take more than one radix pass are
		// TestSortItemsOfManyOwnersIsPlanSortOrder's.
		items := randomItems(rng, 1+rng.IntN(600))
		for i := range items {
			switch rng.IntN(8) { // ids of every form side by side
			case 0:
				items[i].OwnerID = fmt.Sprintf("%032X", rng.IntN(50))
			case 1:
				items[i].OwnerID = fmt.Sprintf("%031x", rng.IntN(50))
			case 2:
				items[i].TokenID = fmt.Sprintf("%032X", rng.Uint64())
			case 3:
				items[i].OwnerName = ""
			}
		}
		s := NewItems(items...)
		if got, want := s.IsSorted(), slices.IsSortedFunc(items, func(a, b Item) int { return compareItems(&a, &b) }); got != want {
			t.Fatalf("round %d: Items.IsSorted %v, IsSorted %v", round, got, want)
		}
		want := slices.Clone(items)
		sortRef(want)
		s.Sort()
		sameItems(t, fmt.Sprintf("round %d", round), s.Slice(), want)
		if !s.IsSorted() {
			t.Fatalf("round %d: not sorted after Sort", round)
		}
	}
}

// FuzzItems: any item, alone or among others that share its values,
// comes back from Items exactly.
func FuzzItems(f *testing.F) {
	for _, it := range hostileItems() {
		var lu int64 = math.MinInt64
		if it.LastUsed != nil {
			lu = it.LastUsed.UnixNano()
		}
		f.Add(it.TokenID, it.TokenName, it.OwnerID, it.OwnerName, it.Reason, it.Created.Unix(), int64(it.Created.Nanosecond()), lu, uint8(0))
	}
	f.Fuzz(func(t *testing.T, tokenID, tokenName, ownerID, ownerName, reason string, sec, nsec, lastUsed int64, form uint8) {
		created := time.Unix(sec, nsec)
		if form&1 == 0 {
			created = created.UTC()
		}
		it := Item{
			TokenID: tokenID, TokenName: tokenName, OwnerID: ownerID, OwnerName: ownerName,
			Created: created, Reason: reason, Policy: tokenName, Mode: ownerName,
			Managed: form&2 != 0,
		}
		if lastUsed != math.MinInt64 {
			it.LastUsed = tp(time.Unix(0, lastUsed).UTC())
		}
		if form&4 != 0 {
			it.Scope = pat.ScopesOf(tokenName, ownerName)
			it.AlsoMatched = []string{reason}
			it.Patch = []pat.PatchOp{pat.Rename(tokenName)}
		}
		if form&8 != 0 {
			it.Scope.Null = true
			it.Patch = []pat.PatchOp{}
		}
		// The grace times, in the arena after the reason's times.
		if form&16 != 0 {
			it.Marked = tp(created)
		}
		if form&32 != 0 {
			it.Deadline = tp(time.Unix(0, lastUsed))
		}
		other := it
		other.Reason = reason + reason
		other.TokenID = tokenID + "x"
		want := []Item{it, other, it}
		s := NewItems(want...)
		sameItems(t, "fuzzed", s.Slice(), want)
		sameEncoding(t, &s, want)
		sameBriefs(t, &s, want)
	})
}

// BenchmarkItemsMemory reports the memory of 100,000 items of a large
// tenant's plan held as Items (the live heap they add), next to
// []Item with the strings an engine gives them.
func BenchmarkItemsMemory(b *testing.B) {
	items := randomItems(rand.New(rand.NewPCG(5, 6)), 100000)
	// The plain form first: a slice of Items with strings of their own,
	// as the listing's decoder and the policies make them.
	liveOf := func(build func() any) float64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		v := build()
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(v)
		return float64(after.HeapAlloc-before.HeapAlloc) / float64(len(items))
	}
	var compact, plain float64
	for b.Loop() {
		plain = liveOf(func() any {
			out := make([]Item, len(items))
			for i, it := range items {
				it.TokenID, it.TokenName = string([]byte(it.TokenID)), string([]byte(it.TokenName))
				it.OwnerID, it.OwnerName = string([]byte(it.OwnerID)), string([]byte(it.OwnerName))
				it.Reason = string([]byte(it.Reason))
				if it.LastUsed != nil {
					it.LastUsed = tp(*it.LastUsed)
				}
				if it.ExpirationDate != nil {
					it.ExpirationDate = tp(*it.ExpirationDate)
				}
				out[i] = it
			}
			return out
		})
		compact = liveOf(func() any {
			s := new(Items)
			s.Append(items...)
			return s
		})
	}
	b.ReportMetric(compact, "B/item")
	b.ReportMetric(plain, "B/item-as-[]Item")
}

// BenchmarkItemsSort sorts the items of a 1,000,000-token tenant's plan
// (about 620,000), listed in random order.
func BenchmarkItemsSort(b *testing.B) {
	items := randomItems(rand.New(rand.NewPCG(9, 10)), 620000)
	for b.Loop() {
		b.StopTimer()
		s := NewItems(items...)
		b.StartTimer()
		s.Sort()
	}
}

// BenchmarkItemsAt reads every item of a large plan once, as a report or
// the engine's bookkeeping does.
func BenchmarkItemsAt(b *testing.B) {
	s := NewItems(randomItems(rand.New(rand.NewPCG(11, 12)), 100000)...)
	b.ReportAllocs()
	for b.Loop() {
		for i := range s.Len() {
			_ = s.At(i)
		}
	}
}

// Reasons larger than an arena chunk (a megabyte, 20,000 times, owner
// ids and quoted names among them), stored next to small ones and
// replaced across the rows' chunk boundary, come back exactly, from At
// and from the encoder's row.
func TestItemsHugeReasons(t *testing.T) {
	const owner = "2C9180867624CBD7017642D6AAAAAAAA"
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, "%s %q %s \x00\xff 日本 ", pat.FormatTime(t0.Add(time.Duration(i)*time.Hour+time.Duration(i%1000)*time.Millisecond)), "tok", owner)
	}
	huge := b.String()
	item := func(i int, reason string) Item {
		return Item{TokenID: fmt.Sprintf("%032x", i), TokenName: "tok", OwnerID: owner, Created: t0, Reason: reason,
			Policy: "p", Mode: ModeEnforce, Action: ActionDelete, Scope: pat.ScopesOf("")}
	}
	want := make([]Item, rowChunk+2)
	for i := range want {
		want[i] = item(i, fmt.Sprintf("lastUsed %s of %q by %s", pat.FormatTime(t0.Add(time.Duration(i)*time.Second)), "tok", owner))
		if i%1500 == 7 {
			want[i] = item(i, huge+fmt.Sprint(i))
		}
	}
	s := NewItems(want...)
	for _, i := range []int{rowChunk - 1, rowChunk} {
		want[i] = item(i, huge+"set")
		s.Set(i, want[i])
	}
	sameItems(t, "huge reasons", s.Slice(), want)
	for _, i := range []int{0, 7, 1507, rowChunk - 1, rowChunk, rowChunk + 1} {
		if got := s.At(i); !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("At(%d): the reason is %d bytes, want %d", i, len(got.Reason), len(want[i].Reason))
		}
		a, b := encoder{}, encoder{}
		a.item(&want[i])
		b.row(&s.c, i)
		if !bytes.Equal(a.buf, b.buf) {
			t.Fatalf("item %d: the row encodes %d bytes, the item %d", i, len(b.buf), len(a.buf))
		}
	}
}
