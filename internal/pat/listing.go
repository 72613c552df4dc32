package pat

import "time"

// ListingKind says which server-side filter a listing call uses.
type ListingKind int

// The listing calls the API supports: the only filterable field is lastUsed, with
// the operators le and isnull.
const (
	ListAll            ListingKind = iota // no filter: every token
	ListLastUsedBefore                    // lastUsed le <Cutoff>
	ListNeverUsed                         // lastUsed isnull
)

// Listing is one listing call the engine should make. Policy planning produces
// them; the API client turns them into filter strings.
type Listing struct {
	Kind   ListingKind
	Cutoff time.Time // for ListLastUsedBefore
}

// String renders the listing as the filter text the API receives (or "all tokens").
func (l Listing) String() string {
	switch l.Kind {
	case ListLastUsedBefore:
		return "lastUsed le " + FormatTime(l.Cutoff)
	case ListNeverUsed:
		return "lastUsed isnull"
	default:
		return "all tokens (no filter)"
	}
}
