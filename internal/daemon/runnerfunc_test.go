package daemon

import (
	"context"

	"github.com/patjanitor/patjanitor/internal/policy"
)

// RunnerFunc adapts a function to Runner, for the tests' scripted runs.
type RunnerFunc func(ctx context.Context, cfg *policy.Config) (*RunReport, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, cfg *policy.Config) (*RunReport, error) {
	return f(ctx, cfg)
}
