package report

import (
	"io"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// Render writes p to w in format (one of Formats) with the default Options.
func Render(w io.Writer, p *plan.Plan, format string) error {
	return RenderOptions(w, p, format, Options{})
}
