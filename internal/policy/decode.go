package policy

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The file is decoded by walking yaml.v3's node tree ourselves rather than with
// (*yaml.Node).Decode: that way every key is checked against the struct it
// belongs to (yaml.v3 drops KnownFields as soon as a custom UnmarshalYAML
// delegates to node.Decode), duplicate keys are caught at any depth, every
// problem is collected instead of the first one ending the decode, and every
// field's line is known to the validation that follows.

// Limits that keep a hostile or broken file from taking the process down.
const (
	maxFileSize = 4 << 20 // bytes
	maxDepth    = 32      // nesting, aliases included
	maxSteps    = 200_000 // nodes visited, aliases expanded
)

var (
	durationType = reflect.TypeOf(time.Duration(0))
	byteSizeType = reflect.TypeOf(ByteSize(0))
	regexpType   = reflect.TypeOf((*regexp.Regexp)(nil))
)

// decoder walks the node tree into the Config's structs.
type decoder struct {
	errs *errorList
	// at maps a field path ("policies[1].match.unusedFor") to the node where
	// it is written: the key for a mapping member, the item for a sequence
	// element. Validation takes its lines from here.
	at     map[string]*yaml.Node
	steps  int
	fields map[reflect.Type]map[string]int
	// bad are the paths already reported (a wrong shape, a bad value):
	// validation does not pile more errors on them.
	bad map[string]bool
	// unknownIn are the mappings holding an unknown, duplicate or merge key:
	// a "required key missing" there is most likely that key misspelled, so
	// it is not reported again.
	unknownIn map[string]bool
}

func newDecoder(errs *errorList) *decoder {
	return &decoder{errs: errs, at: map[string]*yaml.Node{}, fields: map[reflect.Type]map[string]int{}, bad: map[string]bool{}, unknownIn: map[string]bool{}}
}

// has reports whether path was written in the file.
func (d *decoder) has(path string) bool {
	_, ok := d.at[path]
	return ok
}

// line returns the line of path, or of its nearest ancestor written in the
// file (a missing key is reported where its parent is), or 1.
func (d *decoder) line(path string) int {
	for path != "" {
		if n, ok := d.at[path]; ok {
			return n.Line
		}
		path = parentPath(path)
	}
	return 1
}

// parentPath strips the last ".key" or "[i]" from path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// errorf reports a problem at n and marks path bad.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.errs.add(n.Line, path, fmt.Sprintf(format, args...))
}

// tainted reports whether anything at or below path was reported while
// decoding.
func (d *decoder) tainted(path string) bool {
	if d.bad[path] || d.unknownIn[path] {
		return true
	}
	for p := range d.bad {
		if strings.HasPrefix(p, path) && len(p) > len(path) && (p[len(path)] == '.' || p[len(path)] == '[') {
			return true
		}
	}
	return false
}

// resolve follows aliases.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

// decode stores node n (written at path) into v.
func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value, depth int) {
	d.steps++
	if d.steps == maxSteps {
		d.errorf(n, path, "the document is too large or expands too many aliases")
	}
	if d.steps >= maxSteps {
		return
	}
	if depth > maxDepth {
		d.errorf(n, path, "nested too deeply")
		return
	}
	n = d.resolve(n)
	if n.Kind == yaml.AliasNode {
		d.errorf(n, path, "alias nested too deeply")
		return
	}
	isNull := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"

	switch t := v.Type(); {
	case t == durationType:
		d.duration(path, n, v, isNull)
		return
	case t == byteSizeType:
		s, ok := d.scalarString(path, n, isNull)
		if !ok {
			return
		}
		b, err := ParseByteSize(s)
		if err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		v.SetInt(int64(b))
		return
	case t == regexpType:
		s, ok := d.scalarString(path, n, isNull)
		if !ok {
			return
		}
		re, err := regexp.Compile(s)
		if err != nil {
			d.errorf(n, path, "bad regexp %q: %v", s, err)
			return
		}
		v.Set(reflect.ValueOf(re))
		return
	}

	switch v.Kind() {
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.Struct && isNull {
			// "patch:" with nothing under it is an empty mapping, so that
			// validation can say what it lacks.
			v.Set(reflect.New(v.Type().Elem()))
			return
		}
		nv := reflect.New(v.Type().Elem())
		d.decode(path, n, nv.Elem(), depth)
		v.Set(nv)
	case reflect.Struct:
		d.mapping(path, n, v, depth, isNull)
	case reflect.Slice:
		d.sequence(path, n, v, depth, isNull)
	case reflect.String:
		if s, ok := d.scalarString(path, n, isNull); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if !d.scalar(path, n, isNull) {
			return
		}
		var b bool
		if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n, path, "must be true or false, not %q", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int:
		if !d.scalar(path, n, isNull) {
			return
		}
		var i int
		if n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.errorf(n, path, "must be a whole number, not %q", n.Value)
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		if !d.scalar(path, n, isNull) {
			return
		}
		var f float64
		if tag := n.ShortTag(); (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.errorf(n, path, "must be a number, not %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		// Unreachable for the Config types; a programming error if not.
		d.errorf(n, path, "cannot decode into %s", v.Type())
	}
}

// scalar checks that n is a scalar with a value.
func (d *decoder) scalar(path string, n *yaml.Node, isNull bool) bool {
	switch {
	case n.Kind != yaml.ScalarNode:
		d.errorf(n, path, "must be a single value, not a %s", kindName(n))
		return false
	case isNull:
		d.errorf(n, path, "has no value (give one, or remove the key)")
		return false
	}
	return true
}

// scalarString accepts any plain scalar as text (so that clientId: 1234 or
// name: 2024 are the strings written), but no null and no custom tag.
func (d *decoder) scalarString(path string, n *yaml.Node, isNull bool) (string, bool) {
	if !d.scalar(path, n, isNull) {
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		return n.Value, true
	}
	d.errorf(n, path, "unsupported YAML tag %s", n.Tag)
	return "", false
}

func (d *decoder) duration(path string, n *yaml.Node, v reflect.Value, isNull bool) {
	s, ok := d.scalarString(path, n, isNull)
	if !ok {
		return
	}
	dur, err := ParseDuration(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "value"
	}
	return "node"
}

// structFields maps a struct type's yaml keys to field indexes.
func (d *decoder) structFields(t reflect.Type) map[string]int {
	if f, ok := d.fields[t]; ok {
		return f
	}
	f := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if !sf.IsExported() || tag == "" || tag == "-" {
			continue
		}
		f[tag] = i
	}
	d.fields[t] = f
	return f
}

func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value, depth int, isNull bool) {
	if isNull {
		return // an empty section ("exclude:" with everything commented out)
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping (key: value), not a %s", kindName(n))
		return
	}
	fields := d.structFields(v.Type())
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := d.resolve(n.Content[i]), n.Content[i+1]
		key := k.Value
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain names, not a %s", kindName(k))
			continue
		}
		kpath := joinPath(path, key)
		if key == "<<" && k.ShortTag() == "!!merge" {
			d.unknownIn[path] = true
			d.errorf(k, path, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		if first, dup := seen[key]; dup {
			d.unknownIn[path] = true
			d.errorf(k, kpath, "duplicate key (first at line %d)", first.Line)
			continue
		}
		seen[key] = k
		idx, ok := fields[key]
		if !ok {
			d.unknownIn[path] = true
			d.unknownKey(k, kpath, key, v.Type(), fields)
			continue
		}
		d.at[kpath] = k
		d.decode(kpath, val, v.Field(idx), depth+1)
	}
}

func (d *decoder) sequence(path string, n *yaml.Node, v reflect.Value, depth int, isNull bool) {
	if isNull {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list, not a %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		d.at[ipath] = item
		d.decode(ipath, item, s.Index(i), depth+1)
	}
	v.Set(s)
}

// unknownKey reports key, with the advice for an inline secret or the likely
// intended key.
func (d *decoder) unknownKey(k *yaml.Node, kpath, key string, t reflect.Type, fields map[string]int) {
	if advice, ok := inlineSecretAdvice(t, key); ok {
		d.errorf(k, kpath, "secrets are not accepted in the config file; %s", advice)
		return
	}
	known := make([]string, 0, len(fields))
	for f := range fields {
		known = append(known, f)
	}
	sort.Strings(known)
	best, bestDist := "", 3
	for _, f := range known {
		dist := editDistance(strings.ToLower(key), strings.ToLower(f))
		if dist < bestDist {
			best, bestDist = f, dist
		}
	}
	if best != "" {
		d.errorf(k, kpath, "unknown key (did you mean %s?)", best)
		return
	}
	d.errorf(k, kpath, "unknown key (known keys: %s)", strings.Join(known, ", "))
}

// inlineSecretAdvice recognises the keys people write when they put a secret
// into the file and says where it goes instead.
func inlineSecretAdvice(t reflect.Type, key string) (string, bool) {
	lk := strings.ToLower(key)
	switch t {
	case reflect.TypeOf(Tenant{}):
		switch lk {
		case "clientsecret", "secret", "password", "token", "accesstoken":
			return "put the client secret in the file named by tenant.clientSecretFile or in the environment variable " + EnvClientSecret, true
		}
	case reflect.TypeOf(SlackReceiver{}):
		switch lk {
		case "webhookurl", "url", "apiurl":
			return "use webhookUrlFile or webhookUrlEnv", true
		}
	case reflect.TypeOf(WebhookReceiver{}):
		switch lk {
		case "url":
			return "use urlFile or urlEnv", true
		case "hmacsecret", "secret":
			return "use hmacSecretFile or hmacSecretEnv", true
		}
	case reflect.TypeOf(EmailReceiver{}):
		switch lk {
		case "password":
			return "use passwordFile or passwordEnv", true
		case "username":
			return "use usernameFile or usernameEnv", true
		}
	}
	return "", false
}

// editDistance is the Levenshtein distance, for "did you mean" hints on short
// keys.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
