package pat

import "fmt"

// APIVersion is the version of the PAT API a tenant is spoken to with. The
// versions differ in paths (the API client's concern) and in which fields exist
// and are writable (the policy's concern), so the type lives with the model.
type APIVersion string

// The supported versions. v3 is the default; v2025 and v1 have a nullable,
// writable expirationDate and userAwareTokenNeverExpires.
const (
	V3    APIVersion = "v3"
	V2025 APIVersion = "v2025"
	V1    APIVersion = "v1"
)

// ParseAPIVersion accepts "v3", "v2025" and "v1"; the empty string means v3.
func ParseAPIVersion(s string) (APIVersion, error) {
	switch APIVersion(s) {
	case "":
		return V3, nil
	case V3, V2025, V1:
		return APIVersion(s), nil
	}
	return "", fmt.Errorf("unsupported API version %q (want v3, v2025 or v1)", s)
}

// ExpirationWritable reports whether expirationDate can be patched (and be null,
// meaning the token never expires) in this version.
func (v APIVersion) ExpirationWritable() bool { return v == V2025 || v == V1 }
