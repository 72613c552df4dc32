// Package pat is the personal access token model shared by the API client, the
// policy evaluator and the engine. It knows nothing of HTTP or policies: it is the
// token as the SailPoint API describes it, with the distinctions that matter to a
// janitor kept explicit (a null scope is not an empty scope, "never used" is not a
// time, "never expires" is not a time).
package pat
