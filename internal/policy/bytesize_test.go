package policy

import (
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "1048576": 1 << 20, "64KiB": 64 << 10, "128MiB": 128 << 20, "1 GiB": 1 << 30, "512B": 512, " 2MiB ": 2 << 20,
	} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "64MB", "64 kb", "1.5GiB", "-1", "9999999999GiB", "64 MiB B"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
	for b, want := range map[ByteSize]string{128 << 20: "128MiB", 64 << 10: "64KiB", 1 << 30: "1GiB", 1000: "1000B", 0: "0B"} {
		if got := b.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), got, want)
		}
	}
}

func TestBoundsDefaultsAndValues(t *testing.T) {
	const pol = "policies:\n  - {name: stale, match: {unusedFor: 90d}, action: delete}\n"
	cfg, err := Parse("t.yaml", []byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RunTimeout != DefaultRunTimeout || cfg.Tenant.MaxListingBytes != DefaultMaxListingBytes || cfg.Tenant.MaxClockSkew != DefaultMaxClockSkew {
		t.Errorf("defaults: runTimeout %v, maxListingBytes %v, maxClockSkew %v", cfg.RunTimeout, cfg.Tenant.MaxListingBytes, cfg.Tenant.MaxClockSkew)
	}
	cfg, err = Parse("t.yaml", []byte(pol+"runTimeout: 2h\ntenant: {maxListingBytes: 512MiB, maxClockSkew: 15m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RunTimeout != 2*time.Hour || cfg.Tenant.MaxListingBytes != 512<<20 || cfg.Tenant.MaxClockSkew != MaxMaxClockSkew {
		t.Errorf("given: runTimeout %v, maxListingBytes %v", cfg.RunTimeout, cfg.Tenant.MaxListingBytes)
	}
}
