package plan

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/patjanitor/patjanitor/internal/regfile"
)

// MaxFileBytes bounds a saved plan file, like POST /approve bounds a
// submitted one: a plan of a very large tenant, and no more.
const MaxFileBytes = 256 << 20

// ReadFile reads a saved plan once: the bytes that were signed and the plan
// parsed from those same bytes, so what is verified is what is applied.
//
// Only a regular file of at most MaxFileBytes is read: a FIFO would block
// the command (or serve's run) forever and /dev/zero would fill the memory.
// The file is opened without blocking and checked once open (package
// regfile), so a FIFO swapped in for the path is refused too, not waited
// on. data is the file's bytes also when they do not parse (the journal
// records the digest of a refused plan), nil when they could not be read.
func ReadFile(path string) (data []byte, p *Plan, err error) {
	return readFile(path, false)
}

// ReadDropped is ReadFile for a plan file in a directory others drop files
// into (serve's approved directory), which also refuses a symbolic link:
// the directory's listing shows regular files only, so a link is one
// swapped in since, and following it would read any file the daemon can.
func ReadDropped(path string) (data []byte, p *Plan, err error) {
	return readFile(path, true)
}

func readFile(path string, noFollow bool) ([]byte, *Plan, error) {
	data, err := regfile.ReadAll(path, MaxFileBytes, noFollow)
	if err != nil {
		return nil, nil, fmt.Errorf("read plan: %w", err)
	}
	p, err := Read(bytes.NewReader(data))
	if err != nil {
		return data, nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	return data, p, nil
}

// ItemPolicies names the policies of the plan's items, of tokens and of API
// clients, in the order they first appear: the schedules that apply it.
func (p *Plan) ItemPolicies() []string {
	var out []string
	add := func(name string) {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	for _, it := range p.Items.All() {
		add(it.Policy)
	}
	if p.APIClients != nil {
		for i := range p.APIClients.Items {
			add(p.APIClients.Items[i].Policy)
		}
	}
	return out
}
