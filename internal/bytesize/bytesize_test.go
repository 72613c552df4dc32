package bytesize

import "testing"

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{4 << 20: "4 MiB", 64 << 10: "64 KiB", 1 << 10: "1 KiB", 1536: "1536 bytes", 16: "16 bytes", 0: "0 bytes", 3 << 30: "3072 MiB"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}
