package notify

// ReceiversFor returns the receivers a kind of message goes to, as the engine
// routes them (one message per receiver). Test messages go to the receiver
// named on the command line, so they have no route.
func (c Config) ReceiversFor(k Kind) []string {
	switch k {
	case KindSummary:
		return append([]string(nil), c.Summary...)
	case KindFailure:
		return append([]string(nil), c.Failures...)
	case KindDigest, KindNotice:
		if c.Owners != "" {
			return []string{c.Owners}
		}
	}
	return nil
}
