package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	yamlv4 "go.yaml.in/yaml/v4"
	"gopkg.in/yaml.v3"

	"github.com/patjanitor/patjanitor/internal/regfile"
)

// Load reads and parses the config file at path. See Parse.
func Load(path string) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// ReadFile reads the config file at path for Parse: only a regular file (or
// a symbolic link to one, as Kubernetes mounts a ConfigMap) no larger than
// the largest config Parse accepts, which is refused, naming the file and
// the limit, without being read whole. os.ReadFile blocked forever on a
// FIFO put in the config's place (in serve, a reload hung the daemon) and
// read a device such as /dev/zero until memory ran out; the file is opened
// without blocking and refused, naming it and what it is, unless it is
// regular (regfile.ReadAll).
func ReadFile(path string) ([]byte, error) {
	return regfile.ReadAll(path, maxFileSize, false)
}

// Options adjust Parse for tests and demonstrations; the zero value is what
// Load and Parse use.
type Options struct {
	// MinScheduleInterval, when > 0, replaces MinScheduleInterval as the
	// shortest @every schedule accepted (an end-to-end test of the scheduler
	// cannot wait a minute per run).
	MinScheduleInterval time.Duration
}

// Parse decodes data (the contents of filename) strictly, applies the
// defaults and validates everything, in that order. Unknown and duplicate keys,
// wrong types, bad durations, regexps, globs, schedules and time zones, inline
// secrets, and actions or conditions the API version cannot support are all
// errors. Every problem found is returned together as Errors, each with the
// file, line, policy and field. Relative file paths in the config
// (clientSecretFile, the notify and the approvals files) are resolved
// against filename's directory. Parse reads no other file and no environment variable.
func Parse(filename string, data []byte) (*Config, error) {
	return ParseWithOptions(filename, data, Options{})
}

// ParseWithOptions is Parse with opts.
//
// It works in three steps, in the order of blackbox_exporter's loader: the
// strict decode (decodeFile: the YAML node walk, which records the line of
// every key written), the defaults (applyDefaults: what the file left out,
// relative paths resolved), and the validation, which only reads the
// defaulted config and reports. Then the loaded config is prepared for use.
func ParseWithOptions(filename string, data []byte, opts Options) (cfg *Config, err error) {
	defer func() {
		// The YAML parser and the cron parser are third-party code fed with
		// user input; a panic in either is a bad file, not a crash.
		if r := recover(); r != nil {
			cfg, err = nil, errorAtLine1(filename, fmt.Sprintf("cannot parse the file (internal error: %v)", r))
		}
	}()
	c, d, errs, fatal := decodeFile(filename, data)
	if fatal != nil {
		return nil, fatal
	}
	minEvery := MinScheduleInterval
	if opts.MinScheduleInterval > 0 {
		minEvery = opts.MinScheduleInterval
	}
	warns := &errorList{}
	v := &validator{c: c, d: d, errs: errs, warns: warns, minEvery: minEvery}
	// A walk that ran out of budget left the config half decoded: what it
	// reported stands alone.
	if d.steps < maxSteps {
		c.applyDefaults(d, filepath.Dir(filename)) // defaults.go
		v.validate()                               // validate.go
	}
	if len(errs.errs) > 0 {
		return nil, errs.render(filename, func(i int) string {
			if i < len(c.Policies) && c.Policies[i] != nil {
				return c.Policies[i].Name
			}
			return ""
		})
	}
	c.Warnings = warns.render(filename, func(i int) string { return c.Policies[i].Name })
	// Every policy of the file, API client ones included, in file order
	// (taken before they are split off).
	for _, p := range c.Policies {
		c.filePolicies = append(c.filePolicies, p.Name)
	}
	c.schedules, c.Location = v.parsed, v.location
	c.splitResources() // apiclients.go
	c.compile()
	return c, nil
}

// decodeFile is Parse's first step: it parses data as one YAML document and
// decodes it strictly into a Config. errs holds what the decode reported
// (the validation adds to it); fatal is a file that yields no config at all
// (too large, not YAML, empty, two documents).
func decodeFile(filename string, data []byte) (c *Config, d *decoder, errs *errorList, fatal Errors) {
	if len(data) > maxFileSize {
		// ReadFile stops one byte past the limit, so the size is not known.
		return nil, nil, nil, errorAtLine1(filename, fmt.Sprintf("the file is larger than %d bytes, the most a config may be", maxFileSize))
	}
	if line, msg := badCharacter(data); msg != "" {
		return nil, nil, nil, Errors{{File: filename, Line: line, Msg: msg}}
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil, errorAtLine1(filename, emptyFileMsg)
		}
		return nil, nil, nil, syntaxError(filename, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, nil, nil, Errors{{File: filename, Line: max(extra.Line, 1), Msg: "only one YAML document is allowed (remove the second ---)"}}
	case !errors.Is(err, io.EOF):
		return nil, nil, nil, syntaxError(filename, data, err)
	}
	if len(doc.Content) != 1 {
		return nil, nil, nil, errorAtLine1(filename, emptyFileMsg)
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, nil, nil, errorAtLine1(filename, emptyFileMsg)
	}

	sum := sha256.Sum256(data)
	c = &Config{File: filename, Digest: "sha256:" + hex.EncodeToString(sum[:])}
	errs = &errorList{}
	d = newDecoder(errs)
	d.decode("", root, reflect.ValueOf(c).Elem(), 0)
	for i, p := range c.Policies {
		if p != nil { // nil only when the walk ran out of budget
			p.Line = d.line(fmt.Sprintf("policies[%d]", i))
		}
	}
	return c, d, errs, nil
}

const emptyFileMsg = "the file is empty: a config needs at least a policies list (see docs/policies.md)"

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
var yamlAnchorRE = regexp.MustCompile(`unknown anchor '([^']*)' referenced`)

// syntaxError turns a yaml.v3 parse error into a positioned FieldError.
func syntaxError(filename string, data []byte, err error) Errors {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if l := problemLine(data); l > 0 {
			line = l
		}
		return Errors{{File: filename, Line: max(line, 1), Msg: "YAML syntax: " + m[2]}}
	}
	line := 1
	if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line = 1 + bytes.Count(data[:i], []byte("\n"))
		}
	}
	return Errors{{File: filename, Line: line, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}}
}

// problemLine is the line of the first syntax error in data as the YAML
// parser sees the problem (0 when it finds none, no line, or the error is
// the scanner's).
//
// Why a second parser: yaml.v3 reports a parser error at its context mark
// when it has one, that is, where the enclosing construct began: for a key
// indented one space too few inside a policy, the line before the
// "policies:" list's first item, typically a comment tens of lines above the
// mistake. go.yaml.in/yaml/v4 (the YAML organisation's continuation of the
// same parser, already in the module graph) keeps the problem mark. It is
// run only on a file yaml.v3 already refused, to locate the error; the
// message stays yaml.v3's.
func problemLine(data []byte) int {
	var n yamlv4.Node
	err := yamlv4.Unmarshal(data, &n)
	var le *yamlv4.LoadError
	// Parser errors only: for a scanner error (a missing ':') yaml.v3's line
	// is the one with the mistake, and the problem mark is the line after,
	// where the scanner noticed. A mark past the last line (the end of the
	// input) says nothing more than yaml.v3 did.
	if errors.As(err, &le) && le.Stage == yamlv4.ParserStage && le.Mark.Line > 0 && le.Mark.Line <= lineCount(data) {
		return le.Mark.Line
	}
	return 0
}

// lineCount is how many lines data has (a final line without a newline
// counts).
func lineCount(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
}

// badCharacter finds what YAML forbids in a file (invalid UTF-8, control
// characters) and says where, since the YAML parser reports those without a
// line. Lines end where YAML's do: \n, \r\n, \r, U+0085, U+2028, U+2029.
func badCharacter(data []byte) (int, string) {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, "the file is not valid UTF-8"
		case r == '\r' && i+1 < len(data) && data[i+1] == '\n':
		case r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029:
			line++
		case r == '\t' || r == 0xFEFF:
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0xFFFE || r == 0xFFFF:
			return line, fmt.Sprintf("control character %U is not allowed", r)
		}
		i += size
	}
	return 0, ""
}
