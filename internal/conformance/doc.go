// Package conformance holds tests only: they check that every request the API
// client sends, and every response the simulated tenant returns, conforms to
// SailPoint's OpenAPI description of the personal access token API.
package conformance
