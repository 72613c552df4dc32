package cli

import (
	"errors"
	"fmt"
	"os/user"
	"time"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

func newEnableCmd(g *globals) *cobra.Command {
	var reason, by string
	var jf journalFlags
	cmd := &cobra.Command{
		Use:   "enable CLIENT_ID --reason TEXT",
		Short: "Re-enable an API client that patjanitor disabled (journaled)",
		Long: `Re-enable an OAuth API client that a resource: apiClients policy disabled:
PATCH /v3/oauth-clients/CLIENT_ID with /enabled true, journaled (intent with the
reason, then the outcome), and the record of the disable is cleared, so a delete
policy would have to disable the client again and wait its disabledFor once more.
Clients patjanitor did not disable are refused (re-enable those in the UI).
Needs sp:oauth-client:manage.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return errors.New("enable: --reason is required (it is journaled)")
			}
			if by == "" {
				if u, err := user.Current(); err == nil {
					by = u.Username
				}
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			conn, err := connect(cfg, nil, nil)
			if err != nil {
				return err
			}
			// The state first: it holds the journal's anchor (and the record
			// of the disable).
			st, err := g.openState(time.Now)
			if err != nil {
				return fmt.Errorf("enable: %w", err)
			}
			defer func() { _ = st.Close() }()
			j, _, err := g.openJournal(jf, st)
			if err != nil {
				return fmt.Errorf("enable: open journal: %w", err)
			}
			defer func() { _ = j.Close() }()
			c, err := janitor.EnableClient(cmd.Context(), conn.client, j, st, janitor.EnableRequest{
				ClientID: args[0], Reason: reason, By: by, Now: time.Now(),
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.streams.Out, "Enabled API client %s (%s): %s\n",
				untrusted.Terminal(c.ID), untrusted.Terminal(c.Name), untrusted.Terminal(reason))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&reason, "reason", "", "why the client is re-enabled (required, at most 4096 bytes)")
	f.StringVar(&by, "by", "", "who asks for it (default the OS user)")
	addJournalFlags(f, &jf)
	return cmd
}
