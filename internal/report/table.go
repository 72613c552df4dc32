package report

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// Table layout. The table fits Options.Width columns (DefaultWidth when the
// output is not a terminal): the name and owner columns take what the id and
// date columns leave, and a name or owner shortened to fit is repeated whole
// on a line of its own under the row. Token ids are never shortened (an id is
// what a reviewer searches for), and reasons are wrapped at word boundaries,
// never cut, on their own indented lines under each row.
const (
	// DefaultWidth is the table's width when the output is not a terminal.
	DefaultWidth = 80
	// minWidth: below this a row cannot hold an id and a name; a narrower
	// terminal wraps lines rather than getting an unreadable table.
	minWidth   = 60
	idMaxWidth = 36 // a longer id widens only its own row
	dateWidth  = 10 // 2006-01-02, "never"
	detailIn   = 6  // indent of the why/patch lines
	keyWidth   = 12 // header key column
	minCell    = 8  // narrowest name or owner column
)

// Options change how a report is laid out. The zero value is the default.
type Options struct {
	// Width is the number of columns the table fits (0: DefaultWidth).
	// The other formats ignore it.
	Width int
	// ChangesOnly makes the table a summary for a confirmation: the
	// header, the policies with their counts, the guardrails, and only the
	// groups that change the tenant (or warn owners of a grace period). The
	// report-only items and the skipped tokens are counted, not listed.
	ChangesOnly bool

	// terminal: the output is a terminal (RenderTerminal), whose writes
	// cost the writing thread a CPU (see table.items).
	terminal bool
}

func renderTable(w io.Writer, p *plan.Plan, o Options) error {
	bw := newPipeWriter(w)
	width := o.Width
	if width <= 0 {
		width = DefaultWidth
	}
	t := &table{w: bw, width: max(width, minWidth), changesOnly: o.ChangesOnly, workers: runtime.GOMAXPROCS(0)}
	if o.terminal {
		t.workers--
	}
	t.layout(p)
	t.render(p)
	renderClientsTable(bw, p.APIClients, t.changesOnly) // apiclients.go
	// The pipe keeps the first write error and returns it here.
	return bw.close()
}

type table struct {
	w           sink
	width       int
	changesOnly bool
	// workers: how many goroutines render the rows of a large group.
	workers int
	// Column widths of the item and skipped rows.
	idWidth, nameWidth, ownerWidth, policyWidth int
	// rows: what the groups rendered on this goroutine reuse; row: a
	// skipped token's row being made.
	rows *rows
	row  []byte
}

func (t *table) line(format string, args ...any) {
	fmt.Fprintf(t.w, format, args...)
	t.w.WriteByte('\n')
}

// layout sizes the columns for the terminal: id and date at their natural
// widths, name and owner at theirs if the row still fits, else shared (the
// name gets the larger part).
func (t *table) layout(p *plan.Plan) {
	t.idWidth = idWidth(p)
	nameNat, ownerNat := len("TOKEN"), len("OWNER")
	// The names, not the whole items. An owner's tokens are next to each
	// other (plan order), so most owners are measured once.
	var id [64]byte
	var lastOwner string
	for i := range p.Items.Len() {
		_, n := visibleLen(p.Items.TokenName(i))
		nameNat = max(nameNat, n)
		owner := p.Items.OwnerName(i)
		switch {
		case owner == "":
			ownerNat = max(ownerNat, visibleWidth(p.Items.AppendOwnerID(id[:0], i)))
		case owner != lastOwner:
			_, o := visibleLen(owner)
			ownerNat, lastOwner = max(ownerNat, o), owner
		}
	}
	policyNat := len("POLICY")
	for _, s := range p.Skipped {
		nameNat = max(nameNat, utf8.RuneCountInString(visible(s.TokenName)))
		policyNat = max(policyNat, utf8.RuneCountInString(visible(s.Policy)))
	}
	// "  NAME  ID  OWNER  LAST USED"
	avail := t.width - 2 - t.idWidth - dateWidth - 3*2
	switch {
	case nameNat+ownerNat <= avail:
		t.nameWidth, t.ownerWidth = nameNat, ownerNat
	default:
		t.ownerWidth = min(ownerNat, max(minCell, avail*2/5))
		t.nameWidth = max(minCell, min(nameNat, avail-t.ownerWidth))
		t.ownerWidth = max(minCell, min(ownerNat, avail-t.nameWidth))
	}
	t.policyWidth = min(policyNat, 24)
}

// kv prints a header line, wrapping a long value under itself. A value with
// a word too long for the value column (a sha256 on 80 columns) starts on its
// own line under the key instead.
func (t *table) kv(key, value string) {
	avail := t.width - 2 - keyWidth
	for _, w := range strings.Fields(value) {
		if utf8.RuneCountInString(w) > avail {
			t.line("  %s", key)
			t.para("    ", value)
			return
		}
	}
	lines := wrap(value, avail)
	t.line("  %s%s", pad(key, keyWidth), lines[0])
	for _, l := range lines[1:] {
		t.line("  %s%s", strings.Repeat(" ", keyWidth), l)
	}
}

// detail prints "label: text" indented under a row, wrapped, the text aligned.
// It and item write to the buffer directly, not through fmt: they run for
// every item of a plan, a few times each.
func (t *table) detail(label, text string) {
	head := detailIn + utf8.RuneCountInString(label) + len(": ")
	if oneLine(text, t.width-head) {
		t.spaces(detailIn)
		t.w.WriteString(label)
		t.w.WriteString(": ")
		t.w.WriteString(text)
		t.w.WriteByte('\n')
		return
	}
	for i, l := range wrap(text, t.width-head) {
		if i == 0 {
			t.spaces(detailIn)
			t.w.WriteString(label)
			t.w.WriteString(": ")
		} else {
			t.spaces(head)
		}
		t.w.WriteString(l)
		t.w.WriteByte('\n')
	}
}

// spaces writes n spaces.
func (t *table) spaces(n int) {
	const blank = "                                                                "
	for n > len(blank) {
		t.w.WriteString(blank)
		n -= len(blank)
	}
	t.w.WriteString(blank[:max(n, 0)])
}

// cell writes s, k runes long, in a column of n: pad(truncate(s, n), n).
func (t *table) cell(s string, k, n int) {
	if k > n {
		s = truncate(s, n)
		k = utf8.RuneCountInString(s)
	}
	t.w.WriteString(s)
	t.spaces(n - k)
}

// para prints text wrapped to the width, prefix on the first line and its
// width in spaces on the others.
func (t *table) para(prefix, text string) {
	indent := strings.Repeat(" ", utf8.RuneCountInString(prefix))
	for i, l := range wrap(text, t.width-len(indent)) {
		if i == 0 {
			t.line("%s%s", prefix, l)
		} else {
			t.line("%s%s", indent, l)
		}
	}
}

func (t *table) render(p *plan.Plan) {
	s := summarize(p)
	t.para("", fmt.Sprintf("patjanitor plan for %s (API %s)", visible(p.Tenant), visible(p.APIVersion)))
	t.kv("generated", timeText(p.GeneratedAt))
	if p.RunID != "" {
		t.kv("run", visible(p.RunID))
	}
	t.kv("config", visible(p.ConfigDigest))
	hash := p.PlanHash
	if hash == "" {
		hash = "(not sealed)"
	}
	t.kv("plan hash", visible(hash))
	t.kv("population", plural(p.Population, "token"))
	for _, l := range p.Listings {
		t.kv("listing", visible(listingText(l)))
	}
	for _, l := range viewLines(p) {
		t.kv(l.Label, l.Value)
	}
	t.kv("decided", s.Decided)
	t.line("")
	t.verdict(s)
	for _, n := range viewNotices(p) {
		t.line("")
		t.para("!! ", n)
	}
	if p.Error != "" {
		t.line("")
		t.para("!! ", "INCOMPLETE DATA: "+visible(p.Error)+" Nothing will be changed.")
	}

	t.line("")
	t.line("POLICIES")
	if len(s.Counts.Policies) == 0 {
		t.line("  no token matched a policy")
	} else {
		// "  POLICY  MODE      ACTION   TOKENS  PENDING"
		pw := len("POLICY")
		for _, pc := range s.Counts.Policies {
			pw = max(pw, utf8.RuneCountInString(visible(pc.Policy)))
		}
		pw = min(pw, t.width-2-(2+8+2+7+2+7+2+7))
		t.line("  %s  %s  %s  %7s  %7s", pad("POLICY", pw), pad("MODE", 8), pad("ACTION", 7), "TOKENS", "PENDING")
		for _, pc := range s.Counts.Policies {
			t.line("  %s  %s  %s  %7d  %7d", pad(truncate(visible(pc.Policy), pw), pw), pad(visible(pc.Mode), 8),
				pad(visible(pc.Action), 7), pc.Items, pc.Pending)
		}
	}

	t.line("")
	t.line("GUARDRAILS")
	if len(p.Guardrails) == 0 {
		t.line("  none configured")
	}
	for _, g := range p.Guardrails {
		status := "ok"
		if g.Tripped {
			status = "TRIPPED"
		}
		t.line("  %s  limit %-8s wanted %-6d %s", pad(visible(g.Name), 20), number(g.Limit), g.Wanted, status)
		if g.Detail != "" {
			t.detail("detail", visible(g.Detail))
		}
	}

	hiddenItems := 0
	for _, g := range groups(p) {
		if t.changesOnly && !g.Changes() && g.Mode != plan.ModeGrace {
			hiddenItems += g.Len()
			continue
		}
		t.line("")
		t.para("", groupHeading(&g, s))
		t.line("  %s  %s  %s  %s", pad("TOKEN", t.nameWidth), pad("ID", t.idWidth), pad("OWNER", t.ownerWidth), "LAST USED")
		t.items(&g)
	}

	switch {
	case t.changesOnly:
		if hiddenItems > 0 || len(p.Skipped) > 0 {
			t.line("")
			t.para("", fmt.Sprintf("Not listed here: %s that change nothing (report only) and %s (exempt).",
				plural(hiddenItems, "item"), plural(len(p.Skipped), "skipped token")))
		}
	case len(p.Skipped) > 0:
		t.line("")
		t.para("", fmt.Sprintf("SKIPPED (%s matched a policy but are exempt)", plural(len(p.Skipped), "token")))
		t.line("  %s  %s  %s  %s", pad("TOKEN", t.nameWidth), pad("ID", t.idWidth), pad("POLICY", t.policyWidth), "REASON")
		for _, sk := range p.Skipped {
			t.skipped(sk)
		}
	}

	t.line("")
	t.verdict(s)
}

// verdict prints the verdict, wrapped, marked when the plan is blocked.
func (t *table) verdict(s summary) {
	if s.Blocked {
		t.para("!! ", s.Verdict)
		return
	}
	t.para("", s.Verdict)
}

// sink is what a table writes to: the output's buffer, or a block's.
type sink interface {
	io.Writer
	io.StringWriter
	io.ByteWriter
}

// itemBlock is the number of items a worker renders at a time.
const itemBlock = 512

// items prints the rows of a group's items. A large group is rendered in
// blocks on t.workers goroutines, each block into its own buffer, and the
// blocks are written in order: a row depends only on its item and the
// column widths. At most two blocks per worker are in hand at a time, their
// buffers reused.
//
// To a file or a pipe every CPU renders: writing is cheap. On a terminal one
// CPU is left to the pipeWriter's goroutine, because the kernel's line
// discipline runs inside its write(2) calls and the terminal's reader needs
// the CPU as well: on 2 CPUs a 100,000-token table (15 MB) rendered on one
// goroutine while the other writes reaches the terminal sooner than one
// rendered on two that compete with the writer (measured in
// docs/performance.md).
func (t *table) items(g *group) {
	workers := t.workers
	n := g.Len()
	if workers < 2 || n <= itemBlock {
		if t.rows == nil {
			t.rows = new(rows)
		}
		for k := range n {
			g.Brief(k, &t.rows.b)
			t.item(t.rows)
		}
		return
	}
	blocks := (n + itemBlock - 1) / itemBlock
	free := make(chan *bytes.Buffer, 2*workers)
	for range cap(free) {
		free <- new(bytes.Buffer)
	}
	done := make([]chan *bytes.Buffer, blocks)
	for b := range done {
		done[b] = make(chan *bytes.Buffer, 1)
	}
	go func() {
		for b := range blocks {
			buf := <-free
			go func() {
				buf.Reset()
				bt := *t
				bt.w, bt.rows, bt.row = buf, nil, nil
				var r rows
				for k := b * itemBlock; k < min(n, (b+1)*itemBlock); k++ {
					g.Brief(k, &r.b)
					bt.item(&r)
				}
				done[b] <- buf
			}()
		}
	}()
	for b := range blocks {
		buf := <-done[b]
		// A write error is kept by the output's pipeWriter and returned
		// by renderTable; the blocks are still all taken, so that no
		// worker is left waiting.
		_, _ = t.w.Write(buf.Bytes())
		free <- buf
	}
}

// rows is what rendering a group's rows reuses from one item to the next;
// each goroutine that renders rows has its own.
type rows struct {
	b plan.Brief // the item being rendered
	// The last patch and other policies shown, and their lines: the items
	// of a group mostly share them (a plan holds each distinct one once).
	patch      []pat.PatchOp
	patchLines []string
	also       []string
	alsoLine   string
}

// item prints the row of r.b and the lines under it.
func (t *table) item(r *rows) {
	it := &r.b
	// Each cell is escaped and measured once.
	name, nameLen := visibleLen(it.TokenName)
	owner := it.OwnerName
	if owner == "" {
		owner = it.OwnerID // ownerText
	}
	owner, ownerLen := visibleLen(owner)
	id, idLen := visibleLen(it.TokenID)
	t.w.WriteString("  ")
	t.cell(name, nameLen, t.nameWidth)
	t.w.WriteString("  ")
	t.w.WriteString(id) // never shortened: a longer id widens its row
	t.spaces(t.idWidth - idLen)
	t.w.WriteString("  ")
	t.cell(owner, ownerLen, t.ownerWidth)
	t.w.WriteString("  ")
	if !it.HasLastUsed {
		t.w.WriteString("never")
	} else {
		var b [len("2006-01-02")]byte
		t.w.Write(appendDate(b[:0], it.LastUsed)) // dateText without the string
	}
	t.w.WriteByte('\n')
	// What did not fit the row is said in full under it.
	if nameLen > t.nameWidth {
		t.detail("name", name)
	}
	if ownerLen > t.ownerWidth {
		t.detail("owner", owner)
	}
	t.detail("why", visible(it.Reason))
	if len(it.Patch) > 0 {
		if r.patch == nil || !slices.Equal(it.Patch, r.patch) {
			r.patch, r.patchLines = nil, r.patchLines[:0]
			ops, err := patchOpsOf(it.TokenID, it.Patch)
			if err != nil {
				// Not kept: the message names the token.
				r.patchLines = append(r.patchLines, "(cannot be shown: "+err.Error()+")")
			} else {
				r.patch = it.Patch
			}
			for _, o := range ops {
				r.patchLines = append(r.patchLines, visible(o.String()))
			}
		}
		for _, l := range r.patchLines {
			t.detail("patch", l)
		}
	}
	if it.HasDeadline {
		t.detail("deadline", timeText(it.Deadline))
	}
	if len(it.AlsoMatched) > 0 {
		if r.also == nil || !slices.Equal(it.AlsoMatched, r.also) {
			r.also, r.alsoLine = it.AlsoMatched, visible(strings.Join(it.AlsoMatched, ", "))
		}
		t.detail("also matched", r.alsoLine)
	}
}

// skipped prints one exempt token; a reason too long for the rest of the
// row goes on its own line under it.
//
// The row is made in t.row, without fmt: a large tenant has thousands of
// skipped tokens.
func (t *table) skipped(sk plan.Skipped) {
	name, nameLen := visibleLen(sk.TokenName)
	policy, policyLen := visibleLen(sk.Policy)
	reason, reasonLen := visibleLen(sk.Reason)
	id, idLen := visibleLen(sk.TokenID)
	row := append(t.row[:0], "  "...)
	row = appendCell(row, name, nameLen, t.nameWidth)
	row = append(row, "  "...)
	row = appendCell(row, id, idLen, max(idLen, t.idWidth)) // never shortened
	row = append(row, "  "...)
	row = appendCell(row, policy, policyLen, t.policyWidth)
	t.row = row
	rest := t.width - utf8.RuneCount(row) - 2
	if reasonLen <= rest {
		t.w.Write(row)
		t.w.WriteString("  ")
		t.w.WriteString(reason)
	} else {
		t.w.Write(bytes.TrimRight(row, " "))
	}
	t.w.WriteByte('\n')
	if reasonLen > rest {
		t.detail("reason", reason)
	}
	if nameLen > t.nameWidth {
		t.detail("name", name)
	}
	if policyLen > t.policyWidth {
		t.detail("policy", policy)
	}
}

// appendCell appends s, k runes long, in a column of n: pad(truncate(s,
// n), n).
func appendCell(dst []byte, s string, k, n int) []byte {
	if k > n {
		s = truncate(s, n)
		k = utf8.RuneCountInString(s)
	}
	dst = append(dst, s...)
	for ; k < n; k++ {
		dst = append(dst, ' ')
	}
	return dst
}

// groupHeading names a group and says whether it changes the tenant; a
// group that would, in a plan that is blocked, says it is blocked.
func groupHeading(g *group, s summary) string {
	effect := "report only, nothing changes"
	switch {
	case g.Changes() && s.Blocked:
		effect = "BLOCKED: " + s.BlockedBy + ", nothing changes"
	case g.Changes():
		effect = "CHANGES THE TENANT"
	case g.Mode == plan.ModeGrace && s.Blocked:
		effect = "BLOCKED: " + s.BlockedBy + ", nobody is warned"
	case g.Mode == plan.ModeGrace:
		effect = "grace period: marked, owners warned, acted on after the deadline"
	case g.Mode == plan.ModeNeedsOwner:
		effect = "needs the owner: the API lets only a token's owner change its scopes; nothing is sent"
	}
	return groupTitle(g) + " (" + effect + ")"
}

// groupTitle names a group: "unused-90d: enforce delete, 3 tokens".
func groupTitle(g *group) string {
	return fmt.Sprintf("%s: %s %s, %s", visible(g.Policy), visible(g.Mode), visible(g.Action),
		plural(g.Len(), "token"))
}

// idWidth is the width of the id column: the longest id, capped.
func idWidth(p *plan.Plan) int {
	n := len("ID")
	var id [64]byte
	for i := range p.Items.Len() {
		// Not the whole item, and no string of the id.
		n = max(n, visibleWidth(p.Items.AppendTokenID(id[:0], i)))
	}
	for _, s := range p.Skipped {
		n = max(n, utf8.RuneCountInString(visible(s.TokenID)))
	}
	return min(n, idMaxWidth)
}
