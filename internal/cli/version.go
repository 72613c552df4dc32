package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/buildinfo"
)

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := buildinfo.Get()
			_, err := fmt.Fprintf(g.streams.Out, "patjanitor %s (commit %s, %s)\n", i.Version, i.Commit, i.GoVersion)
			return err
		},
	}
}
