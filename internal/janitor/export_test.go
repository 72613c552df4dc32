package janitor

// SetBound sets the records the catch-up keeps of each resource
// (state.MaxConfirmed outside the tests), for the tests of its choice to
// show it on tens of records.
func (cu *CatchUp) SetBound(n int) { cu.bound = n }
