package report

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// measureScript is injected into a copy of the HTML report for the browser
// test only: the report itself has no script and a CSP that forbids one. It
// measures the rendered layout and writes the result into the page, where
// --dump-dom finds it. This needs no DevTools client library: one headless
// Chromium run per width, and the layout is what a reader's browser computes
// from the same CSS (the CSP does not affect layout).
const measureScript = `<script>
(function () {
  var res = {viewport: document.documentElement.clientWidth, page: document.documentElement.scrollWidth, broken: [], overflow: []};
  document.querySelectorAll("td, th").forEach(function (cell) {
    var walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT), node;
    while ((node = walk.nextNode())) {
      var re = /[^\s-]+/g, m;
      while ((m = re.exec(node.data))) {
        var r = document.createRange();
        r.setStart(node, m.index);
        r.setEnd(node, m.index + m[0].length);
        var rects = r.getClientRects(), tops = {}, lines = 0;
        for (var i = 0; i < rects.length; i++) {
          var t = Math.round(rects[i].top);
          if (!tops[t]) { tops[t] = true; lines++; }
        }
        if (lines > 1) res.broken.push(m[0]);
      }
    }
    if (cell.scrollWidth > cell.clientWidth + 1) res.overflow.push("cell: " + cell.textContent.slice(0, 60));
  });
  document.querySelectorAll(".scroll").forEach(function (box) {
    if (box.scrollWidth > box.clientWidth + 1) res.overflow.push("table: " + box.textContent.replace(/\s+/g, " ").slice(0, 60));
  });
  var pre = document.createElement("pre");
  pre.id = "measure";
  pre.textContent = JSON.stringify(res);
  document.body.appendChild(pre);
})();
</script>`

type layout struct {
	Viewport int      `json:"viewport"`
	Page     int      `json:"page"`
	Broken   []string `json:"broken"`
	Overflow []string `json:"overflow"`
}

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it): cannot check the HTML layout in a browser")
	return ""
}

// TestHTMLLayoutInBrowser renders the HTML report in headless Chromium at 800
// and 1440 px and checks the computed layout: the page never scrolls
// sideways, no table needs its scroll box, no cell overflows, and no word
// (an id, a date, "never", a policy name) is broken across lines.
func TestHTMLLayoutInBrowser(t *testing.T) {
	bin := chromium(t)
	var b bytes.Buffer
	if err := Render(&b, fixture(), FormatHTML); err != nil {
		t.Fatal(err)
	}
	doc := b.String()
	csp := regexp.MustCompile(`<meta http-equiv="Content-Security-Policy"[^>]*>`)
	if !csp.MatchString(doc) || strings.Contains(doc, "<script") {
		t.Fatal("the report lost its CSP or carries a script")
	}
	probe := strings.Replace(csp.ReplaceAllString(doc, ""), "</body>", measureScript+"\n</body>", 1)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, []byte(probe), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, width := range []int{800, 1440} {
		t.Run(strconv.Itoa(width), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a hang, not a timing assumption
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
				"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--user-data-dir="+filepath.Join(dir, "profile-"+strconv.Itoa(width)), "--hide-scrollbars",
				"--window-size="+strconv.Itoa(width)+",1000", "--dump-dom", "file://"+page)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("chromium: %v\n%s", err, stderr.String())
			}
			m := regexp.MustCompile(`<pre id="measure">(.*?)</pre>`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("no measurement in the dumped DOM (did the script run?):\n%.2000s\n%s", out, stderr.String())
			}
			var l layout
			if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &l); err != nil {
				t.Fatalf("measurement %s: %v", m[1], err)
			}
			t.Logf("viewport %d px, page %d px", l.Viewport, l.Page)
			if l.Viewport < width-20 {
				t.Fatalf("viewport %d px, asked for %d", l.Viewport, width)
			}
			if l.Page > l.Viewport {
				t.Errorf("the page is %d px wide in a %d px window: it scrolls sideways", l.Page, l.Viewport)
			}
			if len(l.Broken) > 0 {
				t.Errorf("words broken across lines: %q", l.Broken)
			}
			if len(l.Overflow) > 0 {
				t.Errorf("overflowing cells or tables: %q", l.Overflow)
			}
		})
	}
}
