package plan

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
)

// MaxFileBytes bounds a saved plan file, like POST /approve bounds a
// submitted one: a plan of a very large tenant, and no more.
const MaxFileBytes = 256 << 20

// ReadFile reads a saved plan once: the bytes that were signed and the plan
// parsed from those same bytes, so what is verified is what is applied.
//
// Only a regular file of at most MaxFileBytes is read: a FIFO would block
// the command (or serve's run) forever and /dev/zero would fill the memory,
// and serve reads files that whoever may write to its approved directory put
// there. data is the file's bytes also when they do not parse (the journal
// records the digest of a refused plan), nil when they could not be read.
func ReadFile(path string) (data []byte, p *Plan, err error) {
	data, err = readRegular(path, MaxFileBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("read plan: %w", err)
	}
	p, err = Read(bytes.NewReader(data))
	if err != nil {
		return data, nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	return data, p, nil
}

// readRegular reads a regular file of at most limit bytes. The file is
// checked before it is opened (opening a FIFO without a writer blocks) and
// again once open (the path may have been swapped in between).
func readRegular(path string, limit int64) ([]byte, error) {
	notRegular := func(fi os.FileInfo) error {
		if fi.Mode().IsRegular() {
			return nil
		}
		return fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := notRegular(fi); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := notRegular(fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d MiB, the most a plan may be", path, limit>>20)
	}
	return data, nil
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
	for i := range p.Items {
		add(p.Items[i].Policy)
	}
	if p.APIClients != nil {
		for i := range p.APIClients.Items {
			add(p.APIClients.Items[i].Policy)
		}
	}
	return out
}
