package report

import (
	"bufio"
	"encoding/csv"
	"io"
	"strings"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// csvHeader is the CSV's first row; one row per item follows, in plan order.
// Times are pat.TimeLayout; lastUsed is empty for a token never used; scope
// and patch are JSON (scope null means sp:scopes:all, [] means none). Skipped
// tokens and guardrails are not rows: the CSV is the items, for a
// spreadsheet or a script; the other formats carry the rest.
//
// A plan with an apiClients section gets a last column, resource
// (personalAccessTokens or apiClients), and a row per API client item after
// the token rows: tokenId and tokenName hold the client's id and name, the
// owner columns are empty (API clients have no owner) and patch is [].
// The column goes last, and only into such plans, so that the token rows
// keep their columns and order and a plan without API client policies
// writes the CSV it always did: scripts that read columns by position or
// by header keep working.
func csvHeader(clients bool) []string {
	h := []string{
		"tokenId", "tokenName", "ownerId", "ownerName", "policy", "mode", "action",
		"reason", "created", "lastUsed", "scope", "patch",
	}
	if clients {
		h = append(h, "resource")
	}
	return h
}

// csvCell protects a spreadsheet from formula injection: a cell that starts
// with =, +, -, @, a tab or a carriage return is prefixed with a single quote,
// which spreadsheet applications show as text instead of evaluating (the
// OWASP CSV injection advice). The quote is visible to scripts reading the
// file: a token named "=cmd" appears as "'=cmd". No field patjanitor itself
// writes starts with one of these characters, so only tenant-chosen text
// (names) is ever changed.
func csvCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

func renderCSV(w io.Writer, p *plan.Plan) error { return renderCSVCells(w, p, csvCell) }

// terminalCell is a cell for a terminal: untrusted.Terminal's visible
// escapes first, so that a name cannot clear the screen or, with a newline
// inside CSV quotes, print a line of its own.
func terminalCell(s string) string { return csvCell(untrusted.Terminal(s)) }

func renderCSVCells(w io.Writer, p *plan.Plan, cell func(string) string) error {
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw) // RFC 4180 quoting; \n line ends
	clients := p.APIClients != nil
	header := csvHeader(clients)
	if err := cw.Write(header); err != nil {
		return err
	}
	record := make([]string, len(header))
	for _, it := range p.Items.All() {
		scope, err := scopeJSON(it.Scope)
		if err != nil {
			return err
		}
		patch, err := patchJSON(&it)
		if err != nil {
			return err
		}
		lastUsed := ""
		if it.LastUsed != nil {
			lastUsed = timeText(*it.LastUsed)
		}
		row := []string{
			it.TokenID, it.TokenName, it.OwnerID, it.OwnerName, it.Policy, it.Mode, it.Action,
			it.Reason, timeText(it.Created), lastUsed, scope, patch,
		}
		if clients {
			row = append(row, "personalAccessTokens")
		}
		for j, v := range row {
			record[j] = cell(v)
		}
		if err := cw.Write(record); err != nil {
			return err
		}
	}
	if clients {
		for i := range p.APIClients.Items {
			it := &p.APIClients.Items[i]
			scope, err := scopeJSON(it.Scope)
			if err != nil {
				return err
			}
			lastUsed := ""
			if it.LastUsed != nil {
				lastUsed = timeText(*it.LastUsed)
			}
			for j, v := range []string{
				it.ClientID, it.Name, "", "", it.Policy, it.Mode, it.Action,
				it.Reason, timeText(it.Created), lastUsed, scope, "[]", "apiClients",
			} {
				record[j] = cell(v)
			}
			if err := cw.Write(record); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// patchJSON is the item's patch as the plan document writes it, compact and
// without HTML escaping. The keys are written in the order a JSON encoder
// sorts them in; op and path are from the closed set, which needs no escape.
func patchJSON(it *plan.Item) (string, error) {
	ops, err := patchOps(it)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, o := range ops {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"op":"` + o.Op + `","path":"` + o.Path + `","value":` + o.Value + `}`)
	}
	b.WriteByte(']')
	return b.String(), nil
}

// scopeJSON is the scope as the plan document writes it (null or a list),
// without HTML escaping.
func scopeJSON(s pat.Scopes) (string, error) {
	if s.Null {
		return "null", nil
	}
	if s.Values == nil {
		return "[]", nil
	}
	return marshalText(s.Values)
}
