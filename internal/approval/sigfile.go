package approval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hiddeco/sshsig"

	"github.com/patjanitor/patjanitor/internal/atomicfile"
	"github.com/patjanitor/patjanitor/internal/bytesize"
)

// The armor lines of one SSHSIG signature.
const (
	beginLine = "-----BEGIN SSH SIGNATURE-----"
	endLine   = "-----END SSH SIGNATURE-----"
	// metaPrefix starts the line patjanitor writes after a signature it made:
	// the signer's time and reason. They are the signer's statements, not
	// signed: the signature covers the plan's bytes exactly, so that
	// `ssh-keygen -Y verify` checks it too. ssh-keygen reads a signature file
	// up to its first END line and ignores what follows, so the first
	// signature of a file stays verifiable with plain OpenSSH.
	metaPrefix = "# patjanitor-approval "
)

// SigFile returns the signature file of a plan: PLAN.sig.
func SigFile(planFile string) string { return planFile + ".sig" }

// Entry is one signature of a signature file.
type Entry struct {
	// Index counts the file's signatures from 1; Line is where it begins.
	Index, Line int
	// Sig is the parsed signature; nil when Err says why it could not be.
	Sig *sshsig.Signature
	Err error
	// SignedAt and Reason are what the signer stated (patjanitor approve
	// writes them; a plain ssh-keygen signature has none).
	SignedAt time.Time
	Reason   string
}

type meta struct {
	SignedAt time.Time `json:"signedAt"`
	Reason   string    `json:"reason,omitempty"`
}

// ReadSigFile reads a plan's signature file. A file that is missing reads as
// no signatures. A symbolic link is followed: the plan's path is the
// operator's own (apply PLAN, approve PLAN).
func ReadSigFile(file string) ([]Entry, error) {
	return readSigFile(file, false)
}

// ReadDroppedSigFile is ReadSigFile for the signature file of a plan in a
// directory others drop files into (serve's approved directory), which
// refuses a symbolic link, as plan.ReadDropped refuses the plan's: following
// one would read any file the daemon can, as the plan's signatures.
func ReadDroppedSigFile(file string) ([]Entry, error) {
	return readSigFile(file, true)
}

func readSigFile(file string, noFollow bool) ([]Entry, error) {
	data, err := readSmallFile(file, noFollow)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseSigFile(file, data)
}

// ParseSigFile splits a signature file into its signatures. A block that
// does not parse is an Entry with Err (it is reported and does not count);
// text that is neither a signature, a comment nor blank is an error naming
// its line, because it means the file is not what the reviewers wrote.
// A file over 1 MiB is refused whole, as reading one from disk refuses it:
// data can come from elsewhere (serve's POST /approve), and a file stored
// from there that the run then cannot read would be accepted at the door
// and refused as unreadable at the run.
func ParseSigFile(file string, data []byte) ([]Entry, error) {
	if len(data) > MaxFileBytes {
		return nil, sigFileTooLarge(file, len(data))
	}
	var entries []Entry
	var block *bytes.Buffer
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), MaxFileBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case block != nil:
			block.WriteString(line)
			block.WriteByte('\n')
			if strings.TrimSpace(line) == endLine {
				e := Entry{Index: len(entries) + 1, Line: start}
				e.Sig, e.Err = sshsig.Unarmor(block.Bytes())
				if e.Err != nil {
					e.Err = fmt.Errorf("malformed signature: %w", e.Err)
				}
				entries = append(entries, e)
				block = nil
			}
		case strings.TrimSpace(line) == beginLine:
			block, start = &bytes.Buffer{}, n
			block.WriteString(beginLine + "\n")
		case strings.HasPrefix(line, metaPrefix):
			if len(entries) == 0 {
				return nil, fmt.Errorf("%s:%d: approval details before any signature", file, n)
			}
			var m meta
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, metaPrefix)), &m); err != nil {
				return nil, fmt.Errorf("%s:%d: approval details: %w", file, n, err)
			}
			last := &entries[len(entries)-1]
			last.SignedAt, last.Reason = m.SignedAt, m.Reason
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		default:
			return nil, fmt.Errorf("%s:%d: unexpected text outside a signature (a signature file holds armored SSH signatures only)", file, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if block != nil {
		entries = append(entries, Entry{Index: len(entries) + 1, Line: start,
			Err: errors.New("malformed signature: no END line")})
	}
	return entries, nil
}

// AppendSignature adds one armored signature, with the signer's time and
// reason, to a plan's signature file. The file is rewritten through a
// temporary file and a rename, so a crash leaves the old file or the new one,
// never half a signature.
func AppendSignature(file string, sig *sshsig.Signature, signedAt time.Time, reason string) error {
	old, err := readSmallFile(file, false)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, err := ParseSigFile(file, old); err != nil {
		return fmt.Errorf("refusing to add to %s: %w", file, err)
	}
	m, err := json.Marshal(meta{SignedAt: signedAt.UTC(), Reason: reason})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.Write(old)
	if len(old) > 0 && old[len(old)-1] != '\n' {
		buf.WriteByte('\n')
	}
	buf.Write(sshsig.Armor(sig))
	buf.WriteString(metaPrefix)
	buf.Write(m)
	buf.WriteByte('\n')
	if buf.Len() > MaxFileBytes {
		// Written, no reader could read it again: every signature in it,
		// the ones before this one too, would be lost to the plan.
		return fmt.Errorf("refusing to add to %s: with this signature it would be %d bytes, larger than %s, the most a signature file may be", file, buf.Len(), bytesize.Format(MaxFileBytes))
	}

	// 0644: a signature is public, and every reviewer and the daemon read it.
	return atomicfile.Write(file, buf.Bytes(), 0o644)
}

// sigFileTooLarge names a signature file over MaxFileBytes, in the words
// regfile uses for one read from disk.
func sigFileTooLarge(file string, n int) error {
	return fmt.Errorf("%s is %d bytes, larger than %s, the most a signature file may be", file, n, bytesize.Format(MaxFileBytes))
}
