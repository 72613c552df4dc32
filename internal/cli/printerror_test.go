package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/janitor"
)

// printError splits an errors.Join into one line per error, each escaped on
// its own, and prints any other error with several causes as itself: an
// IncompleteError's leading message is what the operator must read.
func TestPrintErrorLines(t *testing.T) {
	cause := errors.New("list tokens: 500")
	incomplete := &janitor.IncompleteError{Problems: []string{"list tokens: 500"}, Causes: []error{cause}}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"joined", errors.Join(errors.New("a"), errors.New("b")), "patjanitor: a\npatjanitor: b\n"},
		{"nested join", errors.Join(errors.New("a"), errors.Join(errors.New("b"), errors.New("c"))),
			"patjanitor: a\npatjanitor: b\npatjanitor: c\n"},
		{"joined forged line", errors.Join(errors.New("bad name \"x\ndeleted 42\"")),
			"patjanitor: bad name \"x\\ndeleted 42\"\n"},
		{"incomplete", incomplete, "patjanitor: incomplete data, nothing will be changed: list tokens: 500\n"},
		{"join holding an incomplete", errors.Join(incomplete, errors.New("journal: closed")),
			"patjanitor: incomplete data, nothing will be changed: list tokens: 500\npatjanitor: journal: closed\n"},
		{"wrapped join", fmt.Errorf("config: %w", errors.Join(errors.New("a"), errors.New("b"))), "patjanitor: config: a\\nb\n"},
	} {
		var b strings.Builder
		printError(&b, tc.err)
		if b.String() != tc.want {
			t.Errorf("%s: printed %q, want %q", tc.name, b.String(), tc.want)
		}
	}
}
