// Package podcidr allocates per-node IPv4 pod ranges of one size from a
// cluster CIDR, as kube-controller-manager's range allocator does: a
// bitmap of the ranges, filled from the Nodes at start, never handing out
// a range twice. It holds no Kubernetes state; the node controller says
// which ranges Nodes hold.
package podcidr

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"sync"
)

// MaxRanges bounds the ranges one allocator tracks (a bitmap of 128 KiB).
const MaxRanges = 1 << 20

// ErrFull: every range of the cluster CIDR is in use.
var ErrFull = errors.New("no free pod range in the cluster CIDR")

// Allocator hands out ranges of one prefix length from an IPv4 CIDR. It is
// safe for concurrent use.
type Allocator struct {
	cluster netip.Prefix
	bits    int // prefix length of each range
	n       int // number of ranges

	mu   sync.Mutex
	used []uint64
	free int
	next int // where the next search starts (next fit)
}

// New returns an allocator of /maskBits ranges of cluster, which must be
// an IPv4 CIDR with maskBits between its own length and 32, holding at
// most MaxRanges ranges.
func New(cluster netip.Prefix, maskBits int) (*Allocator, error) {
	if !cluster.IsValid() || !cluster.Addr().Is4() {
		return nil, fmt.Errorf("cluster CIDR %s is not an IPv4 CIDR", cluster)
	}
	if cluster.Masked() != cluster {
		return nil, fmt.Errorf("cluster CIDR %s has host bits set (did you mean %s?)", cluster, cluster.Masked())
	}
	if maskBits < cluster.Bits() || maskBits > 32 {
		return nil, fmt.Errorf("node CIDR mask size /%d does not fit in cluster CIDR %s (need /%d to /32)", maskBits, cluster, cluster.Bits())
	}
	if maskBits-cluster.Bits() > bits.Len(MaxRanges)-1 {
		return nil, fmt.Errorf("cluster CIDR %s holds more than %d ranges of /%d", cluster, MaxRanges, maskBits)
	}
	n := 1 << (maskBits - cluster.Bits())
	return &Allocator{cluster: cluster, bits: maskBits, n: n, used: make([]uint64, (n+63)/64), free: n}, nil
}

// Cluster returns the cluster CIDR.
func (a *Allocator) Cluster() netip.Prefix { return a.cluster }

// MaskBits returns the prefix length of each range.
func (a *Allocator) MaskBits() int { return a.bits }

// Free returns how many ranges are free.
func (a *Allocator) Free() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.free
}

// index returns the range number of p, or an error when p is not one of
// the allocator's ranges.
func (a *Allocator) index(p netip.Prefix) (int, error) {
	if !p.IsValid() || !p.Addr().Is4() || p.Bits() != a.bits || p.Masked() != p || !a.cluster.Contains(p.Addr()) {
		return 0, fmt.Errorf("%s is not a /%d range of cluster CIDR %s", p, a.bits, a.cluster)
	}
	b := p.Addr().As4()
	off := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	c := a.cluster.Addr().As4()
	base := uint32(c[0])<<24 | uint32(c[1])<<16 | uint32(c[2])<<8 | uint32(c[3])
	return int((off - base) >> (32 - a.bits)), nil
}

func (a *Allocator) prefix(i int) netip.Prefix {
	c := a.cluster.Addr().As4()
	base := uint32(c[0])<<24 | uint32(c[1])<<16 | uint32(c[2])<<8 | uint32(c[3])
	v := base + uint32(i)<<(32-a.bits)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), a.bits)
}

func (a *Allocator) isSet(i int) bool { return a.used[i/64]&(1<<(i%64)) != 0 }

// Occupy marks p, a range a Node holds, as used. It reports false when p
// was used already, and an error when p is not one of the ranges.
func (a *Allocator) Occupy(p netip.Prefix) (bool, error) {
	i, err := a.index(p)
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.isSet(i) {
		return false, nil
	}
	a.used[i/64] |= 1 << (i % 64)
	a.free--
	return true, nil
}

// Allocate returns a free range, now used, or ErrFull.
func (a *Allocator) Allocate() (netip.Prefix, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.free == 0 {
		return netip.Prefix{}, ErrFull
	}
	for k := range a.n {
		i := (a.next + k) % a.n
		if !a.isSet(i) {
			a.used[i/64] |= 1 << (i % 64)
			a.free--
			a.next = (i + 1) % a.n
			return a.prefix(i), nil
		}
	}
	return netip.Prefix{}, ErrFull // unreachable while free counts right
}

// Release frees p. Releasing a free range or a prefix that is not one of
// the ranges does nothing.
func (a *Allocator) Release(p netip.Prefix) {
	i, err := a.index(p)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.isSet(i) {
		a.used[i/64] &^= 1 << (i % 64)
		a.free++
	}
}
