package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/buildinfo"
)

func newVersionCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version (also: patjanitor --version)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := buildinfo.Get()
			switch format {
			case "text":
				_, err := fmt.Fprintf(g.streams.Out, "patjanitor %s (commit %s, %s)\n", i.Version, i.Commit, i.GoVersion)
				return err
			case "json":
				return json.NewEncoder(g.streams.Out).Encode(struct {
					Version   string `json:"version"`
					Commit    string `json:"commit"`
					GoVersion string `json:"goVersion"`
				}{i.Version, i.Commit, i.GoVersion})
			}
			return fmt.Errorf("-o %q: want text or json", format)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
