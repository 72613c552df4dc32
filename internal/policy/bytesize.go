package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// ByteSize is a number of bytes, written in the file as a whole number
// (bytes) or with a binary unit: 64KiB, 128MiB, 1GiB (a space before the unit
// is allowed). KB, MB and GB are refused rather than guessed at: some tools
// read them as powers of 1000, others of 1024.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// ParseByteSize reads a ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size: want a whole number of bytes or one with a unit (KiB, MiB, GiB), e.g. 128MiB", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n * mult), nil
}

// String renders the size in the largest unit that divides it.
func (b ByteSize) String() string {
	for _, u := range byteUnits[:3] {
		if b >= ByteSize(u.mult) && int64(b)%u.mult == 0 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
