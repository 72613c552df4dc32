package cli

import (
	"fmt"
	"os"

	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// writePlanNotifications renders msgs (the engine's DryRunMessages) into dir,
// one file each, and sends nothing (notify.WriteDir reads no secret).
func writePlanNotifications(dir string, cfg *policy.Config, msgs []*notify.Message) ([]string, error) {
	ncfg := notifyConfig(cfg.Notify)
	r, err := notify.NewRenderer(notify.RenderOptions{Templates: ncfg.Templates, Location: cfg.Location})
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	// The messages name tokens, owners and their addresses.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	paths, err := notify.WriteDir(dir, ncfg, r, msgs)
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	return paths, nil
}
