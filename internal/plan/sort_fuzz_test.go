package plan

import (
	"slices"
	"testing"
)

// FuzzSortItemsIsPlanSort draws items from the fuzzer's bytes (policies,
// owner names and ids, token names and ids from short pieces that share
// prefixes, hold NULs and 0xff, cut multi-byte characters, and cross the
// 16-byte prefixes the sort keys hold) and checks the fast sort (that of
// Items.Sort, called also on items already in order) leaves them in exactly
// compareItems' order.
func FuzzSortItemsIsPlanSort(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Add([]byte("\x07\x07\x07\x07\x07\x03\x03\x03\x03\x03\x01\x02\x01\x02\x00\x00\x05\x06\x05\x06"))
	pieces := []string{"", "a", "\x00", "\xff", "é", "\xc3", "\xa9", "0123456789abcdef", "0123456789ABCDEF", "aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaa", "b", "\U0001F600", "0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdeF"}
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() string {
			if len(data) == 0 {
				return ""
			}
			c := data[0]
			data = data[1:]
			s := pieces[int(c)%len(pieces)]
			if c >= 128 && len(data) > 0 { // two pieces
				s += pieces[int(data[0])%len(pieces)]
				data = data[1:]
			}
			return s
		}
		var items []Item
		seen := map[[2]string]bool{}
		for len(data) > 0 && len(items) < 200 {
			it := Item{Policy: next(), OwnerName: next(), OwnerID: next(), TokenName: next(), TokenID: next()}
			if k := [2]string{it.Policy, it.TokenID}; seen[k] {
				continue // a plan holds a token once per policy
			} else {
				seen[k] = true
			}
			items = append(items, it)
		}
		want := slices.Clone(items)
		sortRef(want)
		var c compactItems
		for i := range items {
			c.append(&items[i])
		}
		c.sort()
		for i := range items {
			items[i] = c.at(i)
		}
		if !slices.EqualFunc(items, want, func(a, b Item) bool {
			return a.Policy == b.Policy && a.OwnerName == b.OwnerName && a.OwnerID == b.OwnerID && a.TokenName == b.TokenName && a.TokenID == b.TokenID
		}) {
			t.Fatalf("Items.Sort order differs from compareItems':\n got %+v\nwant %+v", items, want)
		}
	})
}
