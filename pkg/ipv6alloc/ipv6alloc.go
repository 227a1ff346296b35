// Package ipv6alloc chooses, deterministically, the explicit IPv6 address and
// /80 prefix to ask EC2 for on one network interface.
//
// Asking AssignIpv6Addresses for explicit values (Ipv6Addresses.N,
// Ipv6Prefix.N) instead of counts makes a repeat of the same request
// harmless: the value is either assigned once or refused as in use, so a retry
// after an ambiguous 500, a lost reply or a crash cannot add a second prefix.
// For that, a retry must ask for the same value again, which is why the choice
// depends only on the subnet and the ENI ID.
//
// Layout inside the subnet's /64 (AWS reserves its first four addresses and
// its last one, https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html):
//
//   - addresses are taken from the first /80 of the /64 (interface IDs
//     4 .. 2^48-1). That /80 holds the reserved ::0 - ::3, so it can never be
//     a delegated prefix: our addresses never block anyone's prefix, and no
//     prefix can ever cover one of them.
//   - prefixes are /80s numbered 1 .. 0xfffe (bits 64-79 of the address): never
//     the first /80 (reserved addresses, our addresses) nor the last one (it
//     holds the reserved last address).
//
// The package is pure: no AWS, no I/O.
package ipv6alloc

import (
	"crypto/sha256"
	"encoding/binary"
	"iter"
	"net/netip"
)

// MaxCandidates bounds the sequence: after this many conflicts on one ENI
// something other than bad luck is wrong (a subnet nearly full, or a bug),
// and the caller should report it rather than keep trying.
const MaxCandidates = 64

// PrefixBits is the length of the delegated prefixes.
const PrefixBits = 80

// Choice is one candidate: an address and a /80, both inside the subnet.
// Index 0 is the first choice; Index k is the choice after k conflicts. The
// address and the prefix are independent: after a conflict on one of them,
// take that kind's value from the next candidate and keep the other.
type Choice struct {
	Index  int
	Addr   netip.Addr
	Prefix netip.Prefix
}

// firstIID is the lowest interface ID AWS lets an instance use.
const firstIID = 4

// addrSpace is how many interface IDs of the first /80 are ours to choose.
const addrSpace = 1<<48 - firstIID

// Candidates yields up to MaxCandidates choices for eniID inside subnet, a
// /64 IPv6 prefix. The sequence depends only on (subnet, eniID): the same
// inputs yield the same values, in the same order, in every process. It
// yields nothing when subnet is not a /64 of IPv6 or eniID is empty. No
// address and no prefix is yielded twice.
func Candidates(subnet netip.Prefix, eniID string) iter.Seq[Choice] {
	return func(yield func(Choice) bool) {
		if !Valid(subnet) || eniID == "" {
			return
		}
		subnet = subnet.Masked()
		base := subnet.Addr().As16()
		seenAddr := map[uint64]bool{}
		seenSlot := map[uint16]bool{}
		yielded := 0
		// Duplicates are drawn again; the bound keeps a pathological
		// hash from looping (it cannot happen with SHA-256 in practice).
		for draw := uint64(0); yielded < MaxCandidates && draw < 4*MaxCandidates; draw++ {
			iid, slot := derive(subnet, eniID, draw)
			if seenAddr[iid] || seenSlot[slot] {
				continue
			}
			seenAddr[iid], seenSlot[slot] = true, true
			c := Choice{Index: yielded, Addr: addrAt(base, iid), Prefix: prefixAt(base, slot)}
			yielded++
			if !yield(c) {
				return
			}
		}
	}
}

// First is the first candidate, the one every ENI asks for first.
func First(subnet netip.Prefix, eniID string) (Choice, bool) {
	for c := range Candidates(subnet, eniID) {
		return c, true
	}
	return Choice{}, false
}

// Valid reports whether subnet is an IPv6 /64, the only subnet size
// Candidates works in.
func Valid(subnet netip.Prefix) bool {
	a := subnet.Addr()
	return subnet.IsValid() && a.Is6() && !a.Is4In6() && a.Zone() == "" && subnet.Bits() == 64
}

// Reserved reports whether a is one of the addresses AWS reserves in subnet:
// its first four and its last.
func Reserved(subnet netip.Prefix, a netip.Addr) bool {
	if !subnet.Contains(a) {
		return false
	}
	b := a.As16()
	iid := binary.BigEndian.Uint64(b[8:])
	return iid < firstIID || iid == ^uint64(0)
}

// derive maps (subnet, eniID, draw) to an interface ID in the first /80 and a
// /80 slot number in 1..0xfffe.
func derive(subnet netip.Prefix, eniID string, draw uint64) (iid uint64, slot uint16) {
	h := sha256.New()
	b, _ := subnet.MarshalBinary()
	h.Write(b)
	h.Write([]byte{0})
	h.Write([]byte(eniID))
	var n [9]byte
	binary.BigEndian.PutUint64(n[1:], draw)
	h.Write(n[:])
	sum := h.Sum(nil)
	iid = firstIID + binary.BigEndian.Uint64(sum[0:8])%addrSpace
	slot = uint16(1 + binary.BigEndian.Uint64(sum[8:16])%0xfffe)
	return iid, slot
}

func addrAt(base [16]byte, iid uint64) netip.Addr {
	binary.BigEndian.PutUint64(base[8:], iid)
	return netip.AddrFrom16(base)
}

func prefixAt(base [16]byte, slot uint16) netip.Prefix {
	binary.BigEndian.PutUint16(base[8:10], slot)
	return netip.PrefixFrom(netip.AddrFrom16(base), PrefixBits)
}
