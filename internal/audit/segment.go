package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultSegmentBytes is the size past which the journal rotates: the active
// file is renamed to the next sealed segment (journal-000001.jsonl, …) and a
// new one is started, the chain continuing across them. 64 MiB is about
// 100,000 records: a segment is quick to copy, hash and archive, and a
// daemon rotates a few times a year.
const DefaultSegmentBytes int64 = 64 << 20

// SegmentPath is the name of sealed segment n (from 1) of the journal at
// path: journal.jsonl -> journal-000001.jsonl.
func SegmentPath(path string, n int) string {
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%06d%s", strings.TrimSuffix(path, ext), n, ext)
}

// segments lists the sealed segments beside the journal at path: first and
// last are the numbers of the earliest and latest present (0, 0 for none).
// Present segments must be consecutive; the earliest may be later than 1
// when older ones were archived.
func segments(path string) (first, last int, err error) {
	nums, err := segmentNumbers(path)
	if err != nil {
		return 0, 0, err
	}
	if len(nums) == 0 {
		return 0, 0, nil
	}
	// ReadDir sorts by name, and the names have a fixed width.
	first, last = nums[0], nums[len(nums)-1]
	if last-first+1 != len(nums) {
		for i, n := range nums {
			if n != first+i {
				return 0, 0, fmt.Errorf("journal segment %s is missing (segments %d to %d are present around it)", SegmentPath(path, first+i), first, last)
			}
		}
	}
	return first, last, nil
}

// SegmentFiles lists the sealed segments beside the journal at path (see
// SegmentPath), in order, whether or not they are consecutive: the files a
// writer other than the journal must leave alone. None when the directory
// does not exist.
func SegmentFiles(path string) ([]string, error) {
	nums, err := segmentNumbers(path)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(nums))
	for _, n := range nums {
		out = append(out, SegmentPath(path, n))
	}
	return out, nil
}

// segmentNumbers lists the numbers of the sealed segments beside the
// journal at path, ascending. They are found by their names' prefix and
// suffix, not by a glob pattern built from path, whose directory may hold
// pattern characters.
func segmentNumbers(path string) ([]int, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext) + "-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list the journal's segments: %w", err)
	}
	var nums []int
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, stem) || !strings.HasSuffix(name, ext) {
			continue
		}
		digits := strings.TrimSuffix(strings.TrimPrefix(name, stem), ext)
		if len(digits) < 6 || strings.Trim(digits, "0123456789") != "" {
			continue
		}
		n, err := strconv.Atoi(digits)
		if err != nil || n < 1 || SegmentPath(path, n) != filepath.Join(filepath.Dir(path), name) {
			continue
		}
		nums = append(nums, n)
	}
	return nums, nil
}
