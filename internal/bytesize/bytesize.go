// Package bytesize shows a limit in bytes in messages the way the code
// writes it: 4 MiB, 64 KiB, 1000 bytes.
package bytesize

import "fmt"

// Format renders n in the largest binary unit that divides it.
func Format(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
