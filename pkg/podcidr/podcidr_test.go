package podcidr

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
)

func TestNew(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name    string
		cluster netip.Prefix
		bits    int
		ranges  int
		wantErr bool
	}{
		{"kcm default", p("10.244.0.0/16"), 24, 256, false},
		{"whole", p("10.0.0.0/24"), 24, 1, false},
		{"ipv6", p("fd00::/48"), 64, 0, true},
		{"host bits", p("10.244.1.0/16"), 24, 0, true},
		{"mask shorter than cluster", p("10.244.0.0/16"), 15, 0, true},
		{"mask over 32", p("10.244.0.0/16"), 33, 0, true},
		{"too many ranges", p("10.0.0.0/8"), 30, 0, true},
		{"max ranges", p("10.0.0.0/8"), 28, 1 << 20, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(tc.cluster, tc.bits)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New(%s, %d) error %v, want error %v", tc.cluster, tc.bits, err, tc.wantErr)
			}
			if err == nil && a.Free() != tc.ranges {
				t.Errorf("%d free ranges, want %d", a.Free(), tc.ranges)
			}
		})
	}
}

// Every range is handed out once, in the cluster CIDR and of the mask
// size; then ErrFull; a released range is handed out again.
func TestAllocateAllThenFull(t *testing.T) {
	a, err := New(netip.MustParsePrefix("10.244.0.0/20"), 24)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Prefix]bool{}
	for range 16 {
		r, err := a.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		if seen[r] || r.Bits() != 24 || !a.Cluster().Contains(r.Addr()) || r.Masked() != r {
			t.Fatalf("bad or repeated range %s", r)
		}
		seen[r] = true
	}
	if _, err := a.Allocate(); !errors.Is(err, ErrFull) {
		t.Fatalf("17th range: %v, want ErrFull", err)
	}
	r := netip.MustParsePrefix("10.244.7.0/24")
	a.Release(r)
	a.Release(r) // twice: still one free
	if a.Free() != 1 {
		t.Fatalf("free %d after releasing one range twice", a.Free())
	}
	if got, err := a.Allocate(); err != nil || got != r {
		t.Fatalf("after release: %s, %v; want %s", got, err, r)
	}
}

// Ranges Nodes hold are never handed out; occupying one twice reports it;
// prefixes that are not ranges of the allocator are refused.
func TestOccupy(t *testing.T) {
	a, _ := New(netip.MustParsePrefix("10.244.0.0/22"), 24)
	held := netip.MustParsePrefix("10.244.2.0/24")
	if ok, err := a.Occupy(held); !ok || err != nil {
		t.Fatalf("Occupy: %v, %v", ok, err)
	}
	if ok, err := a.Occupy(held); ok || err != nil {
		t.Fatalf("second Occupy: %v, %v; want false, nil", ok, err)
	}
	for _, bad := range []string{"10.245.0.0/24", "10.244.0.0/25", "10.244.0.128/24", "fd00::/64"} {
		if _, err := a.Occupy(netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("Occupy(%s) accepted", bad)
		}
	}
	for range 3 {
		if r, err := a.Allocate(); err != nil || r == held {
			t.Fatalf("Allocate: %s, %v", r, err)
		}
	}
	if _, err := a.Allocate(); !errors.Is(err, ErrFull) {
		t.Fatalf("want ErrFull, got %v", err)
	}
}

// 64 goroutines allocating at once never get the same range.
func TestConcurrentAllocateUnique(t *testing.T) {
	a, _ := New(netip.MustParsePrefix("10.0.0.0/16"), 26)
	var mu sync.Mutex
	seen := map[netip.Prefix]int{}
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 16 {
				r, err := a.Allocate()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[r]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 1024 {
		t.Fatalf("%d distinct ranges for 1024 allocations", len(seen))
	}
	if a.Free() != 0 {
		t.Errorf("free %d, want 0", a.Free())
	}
}

// FuzzAllocator: any sequence of allocate, occupy and release keeps the
// allocator's answers consistent with a model set of used ranges.
func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0, 0, 1, 3, 2, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		a, _ := New(netip.MustParsePrefix("10.1.0.0/21"), 24)
		used := map[netip.Prefix]bool{}
		for i := 0; i+1 < len(ops); i += 2 {
			p := a.prefix(int(ops[i+1]) % 8)
			switch ops[i] % 3 {
			case 0:
				r, err := a.Allocate()
				if len(used) == 8 {
					if !errors.Is(err, ErrFull) {
						t.Fatalf("full allocator gave %s, %v", r, err)
					}
					continue
				}
				if err != nil || used[r] {
					t.Fatalf("Allocate: %s, %v (used %v)", r, err, used[r])
				}
				used[r] = true
			case 1:
				ok, err := a.Occupy(p)
				if err != nil || ok == used[p] {
					t.Fatalf("Occupy(%s) = %v, %v with used %v", p, ok, err, used[p])
				}
				used[p] = true
			case 2:
				a.Release(p)
				delete(used, p)
			}
			if a.Free() != 8-len(used) {
				t.Fatalf("free %d, model %d", a.Free(), 8-len(used))
			}
		}
	})
}
