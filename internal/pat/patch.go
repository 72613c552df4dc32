package pat

// PatchOp is one JSON Patch operation (JsonPatchOperation in the spec), sent as a
// list with Content-Type application/json-patch+json.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Patchable paths. /expirationDate and /userAwareTokenNeverExpires are writable only
// from v2025 on (and in v1).
const (
	PathName                       = "/name"
	PathScope                      = "/scope"
	PathExpirationDate             = "/expirationDate"
	PathUserAwareTokenNeverExpires = "/userAwareTokenNeverExpires"
)
